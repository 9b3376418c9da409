"""The five real domains (lifelong/data/fields.py): parsers on small inline fixtures (no download), the builder on
synthetic pieces, and, where the packages are at hand, the domains built from the real packages."""

from __future__ import annotations

import io
import json
import os
import re
import statistics
from pathlib import Path

import pytest

from lifelong.data import fields
from lifelong.data.records import load_domain, write_domain
from lifelong.data.sources import champ, hpo, more_itertools_docs, shakespeare, shakespeare_scenes, spdx_licences
from lifelong.data.sources.passages import Candidate, Piece, normalise

# ---------------------------------------------------------------- medical: the HPO

OBO = """format-version: 1.2

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000010
name: Microtia
alt_id: HP:0000099
def: "Underdevelopment of the external ear." [PMID:1]

[Term]
id: HP:0000011
name: Hypsarrhythmia
def: "Abnormal interictal high amplitude waves and a background of irregular spikes." [PMID:2]

[Term]
id: HP:0000012
name: Broad thumb
def: "Increased thumb width without increased dorso-ventral dimension." []

[Term]
id: HP:0000013
name: Myelofibrosis
def: "Replacement of bone marrow by fibrous tissue." []

[Term]
id: HP:0000014
name: Tetralogy of Fallot
def: "A cardiac malformation; the diagnosis of TOF is made if three features are present." []

[Term]
id: HP:0000015
name: Anal atresia
def: "Congenital absence of the anus, i.e., the opening at the bottom end of the intestinal tract." []

[Term]
id: HP:0000016
name: Old term
def: "Gone." []
is_obsolete: true

[Term]
id: HP:0000006
name: Autosomal dominant inheritance
def: "A mode of inheritance observed for traits related to a gene on an autosome." []

[Term]
id: HP:0003577
name: Congenital onset
def: "A phenotypic abnormality that is present at birth." []
"""

HPOA_HEADER = ("#description: test\ndatabase_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\t"
               "frequency\tsex\tmodifier\taspect\tbiocuration\n")


def _hpoa_row(disease: str, name: str, hpo_id: str, aspect: str = "P", frequency: str = "", qualifier: str = "") -> str:
    return f"{disease}\t{name}\t{qualifier}\t{hpo_id}\tPMID:1\tPCS\t\t{frequency}\t\t\t{aspect}\tHPO:x\n"


def _hpo_members() -> dict[str, bytes]:
    rows = [_hpoa_row("OMIM:107480", "Townes-Brocks syndrome 1", f"HP:00000{n}", frequency=f)
            for n, f in (("10", "5/5"), ("11", "1/2"), ("12", "HP:0040283"), ("13", ""), ("14", ""), ("15", "3/4"))]
    rows += [_hpoa_row("OMIM:107480", "Townes-Brocks syndrome 1", "HP:0000006", "I"),
             _hpoa_row("OMIM:107480", "Townes-Brocks syndrome 1", "HP:0003577", "C"),
             _hpoa_row("OMIM:107480", "Townes-Brocks syndrome 1", "HP:0000016", qualifier="NOT"),
             # a second disease of the same gene that has microtia too: microtia cannot tell them apart
             _hpoa_row("OMIM:200000", "Other SALL1 disorder", "HP:0000099"),
             _hpoa_row("ORPHA:1", "Not OMIM", "HP:0000010")]
    genes = ("ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n"
             "6299\tSALL1\tHP:0000010\tMicrotia\t-\tOMIM:107480\n"
             "6299\tSALL1\tHP:0000010\tMicrotia\t-\tOMIM:200000\n")
    return {hpo.OBO: OBO.encode(), hpo.ANNOTATIONS: (HPOA_HEADER + "".join(rows)).encode(), hpo.GENES: genes.encode()}


def test_hpo_terms_keep_alternative_ids_and_leave_obsolete_ones_out():
    terms = hpo.parse_obo(OBO)
    assert terms["HP:0000099"].name == "Microtia" and terms["HP:0000010"].definition.startswith("Underdevelopment")
    assert "HP:0000016" not in terms


def test_hpo_document_states_the_gene_the_number_and_the_defined_features():
    diseases = hpo.load(_hpo_members())
    assert [d.id for d in diseases] == ["OMIM:107480"]  # the other has too few defined features
    disease = diseases[0]
    assert disease.gene == "SALL1" and disease.features[0].name == "Microtia"  # most frequent first
    text = hpo.document(disease)
    assert "(OMIM 107480)" in text and "SALL1 gene" in text and "Inheritance: autosomal dominant" in text
    assert "- Broad thumb: Increased thumb width" in text and "Old term" not in text


def test_hpo_questions_are_answered_by_the_document_and_not_given_away():
    disease = hpo.load(_hpo_members())[0]
    text = normalise(hpo.document(disease))
    by_kind = {}
    for candidate in hpo.candidates(disease):
        by_kind.setdefault(candidate.kind, []).append(candidate)
        assert normalise(candidate.answer) in text
    assert by_kind["gene"][0].answer == "SALL1" and by_kind["omim"][0].answer == "107480"
    # microtia is shared with the gene's other disease, so the first feature only this disease has is asked
    assert by_kind["disease"][0].question.endswith("presents with anal atresia?")  # 3/4, after microtia (5/5)
    dropped = {c.answer: c.dropped for c in by_kind["feature"]}
    assert dropped["Broad thumb"] is None  # "thumb" alone is in the definition, "broad" is not
    assert dropped["Tetralogy of Fallot"] == "term named in its definition"  # by its initials
    assert dropped["Myelofibrosis"] is None
    feature = next(c for c in by_kind["feature"] if c.answer == "Myelofibrosis")
    assert feature.question == ('In Townes-Brocks syndrome 1, which clinical feature is defined as "Replacement of '
                                'bone marrow by fibrous tissue."?') and feature.group == "feature:HP:0000013"
    # two features no other disease of SALL1 has, each asked for the disease
    assert [c.question.rsplit(" with ", 1)[1] for c in by_kind["disease"]] == ["anal atresia?", "hypsarrhythmia?"]
    assert {c.answer for c in by_kind["disease"]} == {"Townes-Brocks syndrome 1"}


def test_hpo_a_definition_gives_the_term_away_only_by_all_of_its_words():
    assert hpo.gives_term_away("Hypotonia", "Hypotonia is an abnormally low muscle tone.")
    assert hpo.gives_term_away("Femoral bowing", "Bowing (abnormal curvature) of the femoral shaft.")
    assert hpo.gives_term_away("Tetralogy of Fallot", "The diagnosis of TOF is made if three are present.")
    assert not hpo.gives_term_away("Supernumerary nipple", "Presence of more than two nipples.")
    assert not hpo.gives_term_away("Fever", "Body temperature elevated above the normal range.")


def test_hpo_common_features_and_gene_named_diseases_are_not_asked():
    disease = hpo.load(_hpo_members())[0]
    common = hpo.common_features([disease, disease], limit=1)  # every feature is in "two" diseases
    assert "HP:0000013" in common
    features = [c for c in hpo.candidates(disease, common) if c.kind == "feature"]
    assert features and all(c.dropped in ("common feature", "term named in its definition") for c in features)
    named = hpo.Disease("OMIM:1", "SALL1-related disorder", "SALL1", disease.features, (), ())
    assert hpo.candidates(named)[0].dropped == "gene named in the disease name"
    assert hpo.candidates(disease)[0].dropped is None


def test_hpo_definitions_are_cut_to_their_first_sentence():
    assert hpo.short_definition("Abnormally pale skin. It is seen in anemia [PMID:1]. Third one.") == (
        "Abnormally pale skin. It is seen in anemia.")  # the first has fewer than MIN_DEFINITION_WORDS words
    long = "An abnormal reduction below normal hemoglobin concentration in the circulation. Second sentence here."
    assert hpo.short_definition(long) == long.split(". ")[0] + "."


def test_hpo_frequency_weights():
    assert hpo.frequency_weight("3/4") == 0.75 and hpo.frequency_weight("25%") == 0.25
    assert hpo.frequency_weight("HP:0040285") == 0.0 and hpo.frequency_weight("") == 0.5


# ---------------------------------------------------------------- legal: SPDX licence texts

ZORBLE = ("Zorble Licence\n\nCopyright (c) 2004 Quillfeather Foundation. All rights reserved.\n\n"
          + " ".join("The licensee may redistribute the software provided that the notice is kept." for _ in range(6))
          + "\n\nThe licensee shall not use the marmoset emblem of <<var;name=org;original=the copyright holder;"
            "match=.+>> in any advertisement. <<beginOptional>>This text is optional.<<endOptional>>\n\n"
          + " ".join("The software is provided as is, without warranty of any kind, express or implied."
                     for _ in range(6)))
PLAIN = "Plain Licence\n\n" + " ".join("The licensee may redistribute the software provided that the notice is kept."
                                       for _ in range(15))


def _spdx_members() -> dict[str, bytes]:
    index = {"version": "2.5", "licenses": [
        {"name": "Zorble Licence 1.0", "id": "Zorble-1.0", "template": "Zorble-1.0.txt"},
        {"name": "Plain Licence", "id": "Plain", "template": "Plain.txt"},
        {"name": "Missing Licence", "id": "Missing", "template": "Missing.txt"}]}
    return {spdx_licences.INDEX: json.dumps(index).encode(), "spdx/data/Zorble-1.0.txt": ZORBLE.encode(),
            "spdx/data/Plain.txt": PLAIN.encode()}


def test_spdx_templates_are_written_with_their_original_wording():
    text = spdx_licences.clean_template(ZORBLE)
    assert "emblem of the copyright holder in" in text and "<<" not in text and "This text is optional." in text


def test_spdx_licences_load_and_make_passages_of_whole_paragraphs():
    licences = spdx_licences.load(_spdx_members())
    assert [licence.id for licence in licences] == ["Plain", "Zorble-1.0"]  # a missing template is skipped
    zorble = licences[1]
    passages = spdx_licences.passages(zorble.text)
    assert passages and all(len(p.split()) >= spdx_licences.MIN_WORDS for p in passages)
    assert "".join(passages).replace("\n\n", " ").split() == " ".join(zorble.text.split()).split()


def test_spdx_questions_ask_for_distinctive_words_and_unique_sentences():
    licences = spdx_licences.load(_spdx_members())
    pieces = spdx_licences.pieces(licences)
    zorble = [p for p in pieces if p.key.startswith("Zorble")]
    assert zorble[0].text.startswith("From the Zorble Licence 1.0 (SPDX identifier Zorble-1.0):")
    candidates = [c for p in zorble for c in p.candidates]
    clozes = {c.answer for c in candidates if c.kind == "cloze"}
    assert "marmoset" in clozes or "emblem" in clozes
    identifiers = [c for c in candidates if c.kind == "identifier"]
    # a sentence the plain licence has too is never asked for its licence
    assert not any("redistribute the software provided" in c.question for c in identifiers)
    assert all(c.answer == "Zorble-1.0" and c.aliases == ("Zorble Licence 1.0",) for c in identifiers)
    holders = [c for c in candidates if c.kind == "holder"]
    assert holders and holders[0].answer == "Quillfeather Foundation"
    for piece in zorble:
        for candidate in piece.candidates:
            if not candidate.dropped:
                assert normalise(candidate.answer) in normalise(piece.text)


def test_spdx_a_sentence_naming_the_licence_is_not_asked_for_its_identifier():
    licence = spdx_licences.Licence("Zorble-1.0", "Zorble Licence 1.0", "")
    assert spdx_licences.names_licence(licence, "This is the Zorble licence.")
    assert not spdx_licences.names_licence(licence, "This licence has no name in it.")


def test_spdx_cloze_word_is_distinctive_and_blanked_once():
    spread = {"licensee": 300, "marmoset": 1, "emblem": 2}
    assert spdx_licences.cloze_word("The licensee shall not use the marmoset emblem.", spread) == "marmoset"
    assert spdx_licences.cloze_word("The licensee shall.", spread) is None
    assert spdx_licences.blank("use the marmoset emblem", "marmoset") == "use the ___ emblem"
    # the question names the licence: a word of its name is no cloze
    assert spdx_licences.cloze_word("The marmoset emblem.", spread, frozenset(("marmo",))) == "emblem"


def test_spdx_clozes_take_two_words_of_a_sentence_and_skip_guessable_and_accented_ones():
    spread = {"licensee": 300, "marmoset": 1, "emblem": 2, "ornament": 3, "whichever": 1, "binaires": 1,
              "shown": 400, "fichiers": 40, "développés": 1}
    sentence = "The licensee shall not use the marmoset emblem or ornament, whichever is shown."
    assert spdx_licences.cloze_words(sentence, spread) == ["marmoset", "emblem"]  # rarest first, two at most
    # a word whose stem the sentence repeats is predictable; "développé" is one token, never cut to "velopp"
    assert spdx_licences.cloze_words("The emblem, and emblems of it.", spread) == []
    assert spdx_licences.cloze_words("Les fichiers binaires ont été développés ici.", spread) == ["binaires"]
    licence = spdx_licences.Licence("Zorble-1.0", "Zorble Licence 1.0", "")
    clozes = [c for c in spdx_licences.candidates(licence, sentence, spread, {}) if c.kind == "cloze"]
    assert [c.question.split('"')[1] for c in clozes] == [
        "The licensee shall not use the ___ emblem or ornament, whichever is shown.",
        "The licensee shall not use the marmoset ___ or ornament, whichever is shown."]
    assert len({c.group for c in clozes}) == 1  # one sentence: one split
    # short words of the name ("and") do not make a sentence name the licence
    named = spdx_licences.Licence("W3C-1998", "W3C Software Notice and License", "")
    assert not spdx_licences.names_licence(named, "By copying this work, you agree and/or accept it.")


# ---------------------------------------------------------------- code: more-itertools docstrings

MODULE = '''
def chunky(iterable, n, strict=False):
    """Break *iterable* into lists of length *n*, see :func:`windowy`.

        >>> list(chunky([1, 2, 3, 4], 2))
        [[1, 2], [3, 4]]
        >>> data = [1, 2, 3]
        >>> list(chunky(data, 2))
        [[1, 2], [3]]
        >>> list(chunky(data, 5))
        [[1, 2, 3]]
        >>> it = iter([4, 5, 6])
        >>> list(chunky(it, 2))
        [[4, 5], [6]]
        >>> list(chunky(it, 5))
        [[4, 5, 6]]
        >>> bool(chunky)
        True
        >>> chunky(range(9), 4)  # doctest: +SKIP
        [0, 1, 2, 3]

    For sliding windows, see :func:`windowy` instead.
    The last list may be shorter than the others when the length does not divide.
    Lists are made one at a time, so memory stays small.
    """


def chunkier(iterable):
    """Unlike :func:`chunky`, take no size.

    Use it where chunky would need one.
    """


def windowy(seq, n):
    """Return a sliding window of width ``n`` over *seq*.

    >>> list(windowy([1, 2, 3], 2))
    [(1, 2), (2, 3)]
    """


def _private():
    """Not documented."""
'''


def test_more_itertools_parses_functions_signatures_and_doctests():
    functions = more_itertools_docs.parse_module(MODULE)
    assert [f.name for f in functions] == ["chunky", "chunkier", "windowy"]
    chunky = functions[0]
    assert chunky.signature == "(iterable, n, strict=False)" and chunky.references == ("windowy",)
    assert chunky.doc.startswith("Break iterable into lists of length n, see windowy.")
    assert chunky.examples[0] == more_itertools_docs.Example("list(chunky([1, 2, 3, 4], 2))", "[[1, 2], [3, 4]]")
    assert more_itertools_docs.first_sentence(functions[2].doc) == "Return a sliding window of width n over seq."


def test_more_itertools_questions_take_setup_lines_only_while_fresh():
    functions = more_itertools_docs.parse_module(MODULE)
    candidates = more_itertools_docs.candidates(functions[0], frozenset(f.name for f in functions))
    outputs = [c for c in candidates if c.kind == "output"]
    assert outputs[0].question == "In more_itertools, what does `list(chunky([1, 2, 3, 4], 2))` return?"
    assert outputs[1].question.startswith("In more_itertools, after `data = [1, 2, 3]`, what does")
    assert outputs[1].dropped is None and outputs[1].answer == "[[1, 2], [3]]"
    # `data` is a literal: reading it spends nothing, so it still sets up the next example
    assert outputs[2].dropped is None and outputs[2].question.startswith("In more_itertools, after `data = [1, 2,")
    assert outputs[3].dropped is None and outputs[3].question.startswith("In more_itertools, after `it = iter(")
    assert outputs[4].dropped == "needs a line it cannot have"  # the iterator `it` was read already
    assert outputs[5].dropped == "output guessable"
    assert outputs[6].dropped == "output not checked (doctest skipped)"
    function = next(c for c in candidates if c.kind == "function")
    assert function.answer == "chunky" and function.dropped is None
    reference = next(c for c in candidates if c.kind == "reference")
    assert reference.answer == "windowy" and "___" in reference.question


def test_more_itertools_sentence_questions_quote_the_prose_after_the_first_sentence():
    functions = more_itertools_docs.parse_module(MODULE)
    known = frozenset(f.name for f in functions)
    shared = more_itertools_docs.shared_sentences(functions)
    sentences = [c for c in more_itertools_docs.candidates(functions[0], known, shared) if c.kind == "sentence"]
    assert [(c.question, c.answer, c.dropped) for c in sentences] == [
        ("Which more_itertools function's documentation says: \"For sliding windows, see windowy instead.\"?",
         "chunky", None),
        ("Which more_itertools function's documentation says: \"The last list may be shorter than the others when "
         "the length does not divide.\"?", "chunky", None),
        ("Which more_itertools function's documentation says: \"Lists are made one at a time, so memory stays "
         "small.\"?", "chunky", None)]
    assert all(c.group == "function:chunky" for c in sentences)
    assert more_itertools_docs.is_prose("Return the items of the iterable in order.")
    assert not more_itertools_docs.is_prose("[(False, 0), (False, 1), (True, 2), (True, 3)]")


def test_more_itertools_a_sentence_or_reference_that_gives_the_name_away_is_not_asked():
    functions = more_itertools_docs.parse_module(MODULE)
    known = frozenset(f.name for f in functions)
    candidates = more_itertools_docs.candidates(functions[1], known)
    reference = next(c for c in candidates if c.kind == "reference")
    assert reference.answer == "chunky" and reference.dropped == "name like the function's"
    sentence = next(c for c in candidates if c.kind == "sentence")
    assert sentence.dropped == "name in the sentence"  # "chunky" is in it
    assert more_itertools_docs.like("pad_none", "padded") and not more_itertools_docs.like("only", "peekable")


def test_more_itertools_a_description_that_names_the_function_is_not_asked():
    functions = more_itertools_docs.parse_module(MODULE)
    candidates = more_itertools_docs.candidates(functions[2], frozenset(f.name for f in functions))
    assert next(c for c in candidates if c.kind == "function").dropped == "name in its description"


# ---------------------------------------------------------------- math: CHAMP

CHAMP = {
    "problems": {
        "P_Combinatorics_1": {
            "_text": "How many strings of length 6 over 1, 2, 3 have adjacent digits differing by at most 1?",
            "category": "Combinatorics", "_answer": "239", "ch_list": ["H_1", "C_sum", "C_anon"],
            "solution": {"steps": [{"_text": "We get the sequence (5, 7, 5), (12, 17, 12).", "ch_idxs": [1]},
                                   {"_text": "In total there are 70+99+70=239 such strings."},
                                   {"_text": "With t=1 we get -(a+b)-18=-8, and 64 strings end in 3.",
                                    "ch_idxs": [0, 2]}]}},
        "P_Number-Theory_2": {
            "_text": "Find n^5 mod 5 for integer n divisible by 5.", "category": "Number-Theory", "_answer": "0",
            "ch_list": [], "solution": {"steps": [{"_text": "Since 5 | n, n^5 mod 5=0."}]}},
    },
    "concepts": {"C_sum": {"name": "rule of sum",
                           "_text": "With p_i ways for the i-th action, p_1+...+p_n ways in all."},
                 "C_anon": {"name": None, "_text": "An unnamed fact."}},
    "hints": {},
}


def test_champ_document_has_problem_solution_answer_and_named_concepts():
    problems = champ.parse(json.dumps(CHAMP).encode())
    assert [p.id for p in problems] == ["P_Combinatorics_1", "P_Number-Theory_2"]
    text = champ.document(problems[0])
    assert text.startswith("Problem (Combinatorics): How many strings") and "Answer: 239." in text
    assert "Rule of sum: With p_i ways" in text and "unnamed" not in text
    assert problems[1].category == "Number Theory"


def test_champ_questions():
    problems = champ.parse(json.dumps(CHAMP).encode())
    by_kind = {c.kind: c for c in champ.candidates(problems[0])}
    assert by_kind["answer"].answer == "239" and by_kind["answer"].dropped is None
    steps = [c for c in champ.candidates(problems[0]) if c.kind == "step"]
    # 12 is twice in its step and 70 twice in the other; 239 is the final answer; the rest of the step gives
    # 17 (a list of numbers) and 99 (pure arithmetic) away; the minus of "-18" is the operator, not the number's
    assert [(c.answer, c.dropped) for c in steps] == [("17", "in a list of numbers"),
                                                      ("99", "computable from the step"), ("18", None), ("64", None)]
    assert steps[1].question.endswith('which number completes the step "In total there are 70+___+70=239 such '
                                      'strings."?')
    assert steps[2].question.endswith('the step "With t=1 we get -(a+b)-___=-8, and 64 strings end in 3."?')
    # the step's one named concept (a hint and an unnamed concept do not count)
    step_uses = [c for c in champ.candidates(problems[0]) if c.kind == "step_uses"]
    assert [(c.answer, c.dropped) for c in step_uses] == [("rule of sum", None)]
    assert step_uses[0].question.endswith('which named result does the step "We get the sequence (5, 7, 5), '
                                          '(12, 17, 12)." use?')
    assert by_kind["uses"].answer == "rule of sum" and by_kind["concept"].answer == "rule of sum"
    for candidate in champ.candidates(problems[0]):
        assert normalise(candidate.answer) in normalise(champ.document(problems[0]))
    assert champ.candidates(problems[1])[0].dropped == "answer guessable"


# ---------------------------------------------------------------- creative: Shakespeare runs

def _play() -> str:
    lines = ["THE TEMPEST", ""]
    for i in range(40):
        speaker = ("MIRANDA", "PROSPERO")[i % 2]
        lines += [f"{speaker}.", f"Speech number {i} of the sea and the sky and the brave island marigold{i}",
                  "with the tempest howling over the yellow sands tonight.", ""]
    return "\n".join(lines)


def test_shakespeare_runs_are_long_and_ask_the_existing_line_questions():
    speeches = shakespeare.parse_play(_play(), "The Tempest")
    runs = shakespeare_scenes.runs(speeches)
    assert runs and all(sum(len(s.text.split()) for s in run) >= shakespeare_scenes.TARGET_WORDS for run in runs)
    pieces = shakespeare_scenes.pieces([speeches])
    assert pieces[0].text.startswith("From Shakespeare's The Tempest:")
    candidate = pieces[0].candidates[0]
    assert candidate.question.startswith("In Shakespeare's The Tempest, what word ends the line")
    assert candidate.answer == "tonight" and normalise(candidate.answer) in normalise(pieces[0].text)


def _speech(index: int, text: str, speaker: str = "Miranda", askable: bool = False) -> shakespeare.Speech:
    return shakespeare.Speech("The Tempest", speaker, text, index, askable)


def test_shakespeare_clozes_ask_rare_words_in_their_clause():
    speech = _speech(3, "Good wind, blow soft; the brave marmoset sleeps upon the yellow sands tonight, and "
                        "the quillfeather dreams.")
    spread = {w.lower(): 50 for w in shakespeare_scenes.TOKEN.findall(speech.text)}
    spread |= {"marmoset": 1, "quillfeather": 2, "tonight": 1}
    clozes = shakespeare_scenes.cloze_candidates(speech, spread)
    # the rarest first, one per clause, never the last word (which the line question asks)
    assert clozes[0].answer == "marmoset" and clozes[0].question == (
        "In Shakespeare's The Tempest, which word fills the blank: \"the brave ___ sleeps upon the yellow sands "
        "tonight, and the quillfeather dreams.\"?")
    assert len(clozes) == 1  # "quillfeather" is in the same clause
    assert all(c.group == "The Tempest:3" for c in clozes)
    # a clause too long or too short to quote gives a window of words around the blank
    long = _speech(4, " ".join(["sand"] * 40 + ["marmoset"] + ["sea"] * 40))
    quoted = shakespeare_scenes.cloze_candidates(long, {"sand": 9, "sea": 9, "marmoset": 1})[0].question
    assert quoted.split('"')[1] == " ".join(["sand"] * 10 + ["___"] + ["sea"] * 10)


def test_shakespeare_speaker_questions_are_not_named_in_their_line_and_capped_per_run():
    run = [_speech(i, f"The marmoset number {word} sleeps upon the sands.", speaker)
           for i, (word, speaker) in enumerate([("one", "Miranda"), ("two", "Prospero"), ("three", "Ariel"),
                                                ("four", "Caliban"), ("five", "Ferdinand")])]
    run.insert(0, _speech(9, "Prospero, my father, the marmoset sleeps.", "Prospero"))
    run.insert(1, _speech(10, "Hence!", "Prospero"))  # too short to ask
    run.insert(2, _speech(11, "The storm is over now, good people all.", "Boatswain"))  # a role, not a name
    speakers = [c for c in shakespeare_scenes.candidates(run) if c.kind == "speaker"]
    assert speakers[0].dropped == "speaker named in the line"
    kept = [c for c in speakers if c.dropped is None]
    assert [c.answer for c in kept] == ["Miranda", "Prospero", "Ariel"]  # SPEAKERS_PER_RUN
    assert kept[0].question == ("In Shakespeare's The Tempest, who says \"The marmoset number one sleeps upon the "
                                "sands.\"?")
    said = shakespeare_scenes.speech_counts([run, [_speech(0, "The marmoset number one sleeps upon the sands.")]])
    again = [c for c in shakespeare_scenes.candidates(run, said=said) if c.kind == "speaker"]
    assert again[1].dropped == "line said twice in the comedies"


# ---------------------------------------------------------------- the builder on synthetic pieces


def _synthetic_pieces(n: int = 120) -> list[Piece]:
    pieces = []
    for i in range(n):
        text = f"Fact sheet {i}: the zorb{i} lives in Plinth{i}. " + " ".join(f"filler{i}w{j}" for j in range(60))
        candidates = (Candidate("home", f"Where does zorb{i} live?", f"Plinth{i}", f"g{i}"),
                      Candidate("name", f"Which zorb lives in Plinth{i}?", f"zorb{i}", f"g{i}"),
                      Candidate("missing", f"What colour is zorb{i}?", "purple", f"c{i}"),
                      Candidate("rejected", f"What is zorb{i}?", "a zorb", f"r{i}", dropped="guessable"))
        pieces.append(Piece(f"p{i}", text, candidates))
    # one question asked with two answers: ambiguous
    pieces.append(Piece("x", "Fact sheet x: the zorb0 also lives in Marn. " + "pad " * 300,
                        (Candidate("home", "Where does zorb0 live?", "Marn", "gx"),)))
    return pieces


SMALL = fields.FieldSize(word_budget=4000, eval_questions=40, train_questions=12)


def test_build_field_keeps_the_budget_groups_and_answers():
    built = fields.build_field("toy", _synthetic_pieces(), SMALL, seed=3)
    assert sum(len(d.text.split()) for d in built.documents) <= SMALL.word_budget
    assert all(len(d.text.split()) >= fields.MIN_DOCUMENT_WORDS for d in built.documents)
    assert len(built.questions("eval")) == 40 and len(built.questions("train")) == 12
    corpus = normalise(" ".join(d.text for d in built.documents))
    assert all(normalise(item.answer) in corpus for item in built.items)
    assert not {i.question for i in built.questions("eval")} & {i.question for i in built.questions("train")}
    # the two questions about one zorb (one group) are in the same split
    split_of = {item.question: item.split for item in built.items}
    for question, split in split_of.items():
        if question.startswith("Which zorb lives in Plinth"):
            number = question.removeprefix("Which zorb lives in Plinth").rstrip("?")
            assert split_of.get(f"Where does zorb{number} live?", split) == split
    log = built.log
    assert log["dropped"]["missing: answer not in its document"] > 0 and log["dropped"]["rejected: guessable"] > 0
    assert log["kept"] == 52 and log["made"] >= log["kept"]
    assert "Where does zorb0 live?" not in split_of or log["dropped"].get("home: ambiguous (two answers)") is None


def test_build_field_leaves_sparse_pieces_out():
    pieces = _synthetic_pieces()
    sparse = [Piece(f"s{i}", f"Sparse sheet {i}. " + "pad " * 300, (Candidate("home", f"Where is s{i}?", "Sparse",
                                                                              f"s{i}"),)) for i in range(20)]
    assert fields.density(sparse[0]) < 1 < fields.density(pieces[0])
    built = fields.build_field("toy", sparse + pieces, SMALL, seed=3, min_density=1.0)
    # the 20 sparse sheets and the padded piece "x"
    assert built.log["sparse_pieces"] == 21 and not any("Sparse sheet" in d.text for d in built.documents)
    assert fields.build_field("toy", sparse + pieces, SMALL, seed=3).log["sparse_pieces"] == 0  # no threshold
    assert fields.MIN_DENSITY["legal"] > 0


def test_check_candidates_drops_a_question_with_two_answers():
    dropped = fields.Counter()
    kept = fields.check_candidates([("zorb lives in Plinth", [Candidate("home", "Where?", "Plinth", "a")]),
                                    ("zorb lives in Marn", [Candidate("home", "Where?", "Marn", "b")])], dropped)
    assert kept == [] and dropped["home: ambiguous (two answers)"] == 1 and dropped["home: question asked twice"] == 1


def test_build_field_is_deterministic_and_seeded():
    first = fields.build_field("toy", _synthetic_pieces(), SMALL, seed=3)
    again = fields.build_field("toy", _synthetic_pieces(), SMALL, seed=3)
    other = fields.build_field("toy", _synthetic_pieces(), SMALL, seed=4)
    assert first.records() == again.records() and first.log == again.log
    assert first.records() != other.records()


def test_show_prints_a_document_and_a_question_per_domain():
    built = {"medical": fields.build_field("medical", _synthetic_pieces(), SMALL)}
    out = io.StringIO()
    fields.show(built, width=80, out=out)
    text = out.getvalue()
    assert text.startswith("== medical: ") and "[...]" in text and "\nQ: " in text and "\nA: " in text


# ---------------------------------------------------------------- the real packages

PREPARED = os.environ.get("LIFELONG_PREPARED_CACHE")
DOWNLOADS = os.environ.get("LIFELONG_FIELDS_DOWNLOADS") or (str(Path(PREPARED) / "downloads") if PREPARED else None)


def _source(item) -> str | None:
    """The sentence a question quotes, with its blank filled in (None when it quotes nothing)."""
    quoted = re.findall(r'"(.{20,})"', item.question)
    return normalise(quoted[0].replace("___", item.answer)).rstrip(" .") if quoted else None


KINDS = {"medical": {"gene", "omim", "disease", "feature"}, "legal": {"cloze", "identifier"},
         "code": {"output", "function", "reference", "sentence"},
         "math": {"answer", "step", "step_uses", "uses", "concept"}, "creative": {"line", "cloze", "speaker"}}


@pytest.fixture(scope="module")
def real_fields():
    sources = fields.load_field_sources(Path(DOWNLOADS))
    return sources, fields.build_fields(sources, "small", seed=0)


@pytest.mark.skipif(not DOWNLOADS, reason="needs the packages: scripts/test.sh names its cache in "
                    "LIFELONG_PREPARED_CACHE (the five packages are fetched into its downloads/), or point "
                    "LIFELONG_FIELDS_DOWNLOADS at a download cache")
def test_the_real_domains(real_fields, tmp_path):
    sources, built = real_fields
    assert list(built) == list(fields.DOMAINS)
    for name, domain in built.items():
        lengths = [len(d.text.split()) for d in domain.documents]
        assert statistics.median(lengths) >= 150, name
        assert 18 <= len(domain.documents) <= 35, name  # 7,500 words of documents of 150-400 words
        assert sum(lengths) <= fields.SIZES["small"].word_budget, name
        corpus = normalise(" ".join(d.text for d in domain.documents))
        eval_items, train_items = domain.questions("eval"), domain.questions("train")
        assert len(eval_items) >= 200 and len(train_items) >= 40, name
        assert set(domain.log["kept_by_kind"]) >= KINDS[name], name
        assert all(normalise(item.answer) in corpus for item in domain.items), name
        assert not {i.question for i in eval_items} & {i.question for i in train_items}, name
        assert len({i.question for i in domain.items}) == len(domain.items), name
        # no eval question's source sentence (what it quotes, blank filled) is a practice question's
        assert not {_source(i) for i in eval_items} & {_source(i) for i in train_items} - {None}, name
        # short answers: a few words (a doctest's output: a short line)
        assert all(len(item.answer.split()) <= 8 or (name == "code" and len(item.answer) <= 50)
                   for item in domain.items), name
        # the same package files give byte-identical domain files
        write_domain(tmp_path / f"{name}-1.jsonl", domain.records())
        again = fields.build_field(name, sources.pieces[name], fields.SIZES["small"], seed=0)
        write_domain(tmp_path / f"{name}-2.jsonl", again.records())
        assert (tmp_path / f"{name}-1.jsonl").read_bytes() == (tmp_path / f"{name}-2.jsonl").read_bytes()
        assert len(load_domain(tmp_path / f"{name}-1.jsonl").eval_items) == len(eval_items)
