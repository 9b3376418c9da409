"""The practice piece: rule-made questions, cloze deletions and restatements from plain documents."""

from __future__ import annotations

import json

from lifelong.config import PracticeConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.examples import Example
from lifelong.experiment import Experiment
from lifelong.pieces.practice import CLOZE, make_practice, sentences, spans, within_budget

from conftest import write_jsonl

COURT = ("The highest court of Keldar is the Bench of Nine Lamps, which sits in the city of Orrim. "
         "Its nine judges serve terms of 14 years.")


def asked(made) -> dict[str, str]:
    return {item.question: item.answer for item in made.questions}


def test_sentences_split_at_their_ends():
    first, second = sentences(COURT)
    assert first.endswith("city of Orrim.") and second == "Its nine judges serve terms of 14 years."


def test_names_numbers_colours_and_years_become_questions():
    made = make_practice("A contract sealed with blue wax can be cancelled within 30 days. "
                         "The Code was written at the fortress of Kaldun in the year 903.", PracticeConfig())
    questions = asked(made)
    assert questions["A contract sealed with what color wax can be cancelled within 30 days?"] == "blue"
    assert questions["A contract sealed with blue wax can be cancelled within how many days?"] == "30"
    assert questions["The Code was written at the fortress of what in the year 903?"] == "Kaldun"
    assert questions["The Code was written at the fortress of Kaldun in what year?"] == "903"
    assert questions["Fill in the blank: A contract sealed with blue wax can be cancelled within ___ days."] == "30"
    assert all(item.split == "train" for item in made.questions)


def test_a_name_of_several_words_is_one_answer():
    questions = asked(make_practice(COURT, PracticeConfig()))
    court = "The highest court of Keldar is the what, which sits in the city of Orrim?"
    assert questions[court] == "Bench of Nine Lamps"
    assert "Keldar" in questions.values() and "Orrim" in questions.values()


def test_a_pronoun_sentence_is_asked_with_the_sentence_that_says_what_it_is():
    questions = asked(make_practice(COURT, PracticeConfig()))
    assert questions[COURT.replace("14 years.", "how many years?")] == "14"
    made = make_practice("It opens with a pronoun, 12 times. " + COURT, PracticeConfig())
    assert made.dropped["pronoun subject"] == 1 and "12" not in asked(made).values()


def test_long_answers_are_dropped_with_a_reason():
    made = make_practice(COURT, PracticeConfig(max_answer_words=2))
    assert made.dropped["long answer"] == 2  # "Bench of Nine Lamps", as a question and as a cloze
    assert "Bench of Nine Lamps" not in asked(made).values() and "14" in asked(made).values()
    assert made.made == len(made.questions) + sum(made.dropped.values())


def test_copulas_are_restated_both_ways():
    made = make_practice("The medical term for a fear of thunder is astraphobia.", PracticeConfig())
    assert asked(made)["What is the medical term for a fear of thunder?"] == "astraphobia"
    assert made.texts == ["Astraphobia is the medical term for a fear of thunder."]
    assert not make_practice("The medical term for a fear of thunder is astraphobia.",
                             PracticeConfig(restatements=False)).texts


def test_options_switch_kinds_off_and_cap_the_count():
    only_questions = make_practice(COURT, PracticeConfig(cloze=False))
    assert not any(q.startswith("Fill in") for q in asked(only_questions))
    capped = make_practice(COURT, PracticeConfig(max_per_document=2))
    assert len(capped.questions) == 2 and capped.dropped["over max_per_document"] > 0
    assert spans("no capitals or numbers here.") == []


GLOSSARY = ("The legal term for a formal written accusation of 3 people is indictment. "
            "The legal term for the Court of Appeal of Keldar is Bench of Nine Lamps.")


def test_a_sentence_cap_keeps_the_copula_question_first():
    everything = make_practice(GLOSSARY, PracticeConfig())
    assert len(everything.questions) > 2  # spans' questions and cloze deletions as well
    capped = make_practice(GLOSSARY, PracticeConfig(max_per_sentence=1))
    assert asked(capped) == {"What is the legal term for a formal written accusation of 3 people?": "indictment",
                             "What is the legal term for the Court of Appeal of Keldar?": "Bench of Nine Lamps"}
    assert capped.dropped["over max_per_sentence"] == len(everything.questions) - 2
    assert capped.texts == everything.texts  # the reverse restatements are a separate switch
    no_texts = make_practice(GLOSSARY, PracticeConfig(max_per_sentence=1, restatement_texts=False))
    assert no_texts.texts == [] and asked(no_texts) == asked(capped)


def test_a_cap_of_two_asks_two_facts_before_a_second_form_of_one():
    made = make_practice("Dr Orlan treated 12 patients in Velmora.", PracticeConfig(max_per_sentence=2))
    assert asked(made) == {"Dr Orlan treated how many patients in Velmora?": "12",
                           "Dr Orlan treated 12 patients in what?": "Velmora"}
    assert made.dropped["over max_per_sentence"] > 0


def test_a_section_number_is_a_label_not_a_fact():
    made = make_practice("Medical terms, part 3. The patient waited 3 days.", PracticeConfig())
    assert asked(made) == {"The patient waited how many days?": "3",
                           "Fill in the blank: The patient waited ___ days.": "3"}


def test_a_round_studies_the_practice_and_logs_its_yield(tmp_path, tiny):
    docs = tmp_path / "docs"
    write_jsonl(docs / "law.jsonl", [{"kind": "document", "text": COURT},
                                     {"kind": "qa", "question": "Where does the Bench of Nine Lamps sit?",
                                      "answer": "Orrim"}])
    config = load_config(overrides={"model": "tiny", "pieces": ["full_finetune", "practice"], "stream": str(docs),
                                    "out": str(tmp_path / "run"), "training": {"epochs": 1, "batch_size": 4},
                                    "practice": {"max_ratio": None},  # every item (preset e sets a budget)
                                    "evaluation": {"progress": False}})
    experiment = Experiment(config)
    learner, _ = experiment._build()
    learner.log = lambda event: None  # nothing is written before the run starts
    domain = Domain("law", documents=[Document(COURT)])
    examples = learner.examples(domain)
    assert len(examples) == 1 + len(make_practice(COURT, config.practice).questions)
    assert any(e.prompt and "city of what?" in e.prompt for e in examples)
    given = QAItem("Where does the Bench of Nine Lamps sit?", "what", (), "train")
    made_again = QAItem("The highest court of Keldar is the Bench of Nine Lamps, which sits in the city of what?",
                        "Orrim", (), "train")
    assert made_again in make_practice(COURT, config.practice).questions
    with_questions = learner.examples(Domain("law", documents=[Document(COURT)], items=[given, made_again]))
    assert len(with_questions) == len(examples) + 1  # the given question that practice makes too is there once
    assert sum(made_again.question in e.prompt for e in with_questions) == 1
    Experiment(config).run()
    events = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    practice = next(e for e in events if e["event"] == "practice")
    assert practice["domain"] == "law" and practice["kept"] > 0
    assert practice["per_document"][0] == {"made": practice["kept"], "kept": practice["kept"], "restatements": 0,
                                           "dropped": {}, "over_max_ratio": 0}


def _practice(question: str, document: int, length: int = 10) -> tuple:
    example = Example(text="x" * (length - len(question)), prompt=question)  # `length` characters in all
    return example, document, question.startswith(CLOZE)


def test_a_budget_drops_cloze_first_then_each_documents_last_items():
    own = [Example(text="y" * 10)]  # the round's examples: 10 characters
    practice = [_practice("q1", 0), _practice("q2", 0), _practice(CLOZE + "c1", 0, length=30),
                _practice("r1", 1), _practice("r2", 1)]
    names = lambda kept: [example.prompt for example, _, _ in kept]  # noqa: E731
    assert within_budget(practice, own, None) == practice
    assert names(within_budget(practice, own, 7.0)) == ["q1", "q2", CLOZE + "c1", "r1", "r2"]
    assert names(within_budget(practice, own, 4.0)) == ["q1", "q2", "r1", "r2"]  # the cloze deletion goes first
    assert names(within_budget(practice, own, 2.0)) == ["q1", "r1"]  # every document keeps its first item
    assert names(within_budget(practice, own, 0.5)) == []


def test_a_rounds_practice_budget_is_logged(tmp_path, tiny):
    docs = tmp_path / "docs"
    write_jsonl(docs / "law.jsonl", [{"kind": "document", "text": COURT},
                                     {"kind": "qa", "question": "Where does the Bench sit?", "answer": "Orrim"}])
    overrides = {"model": "tiny", "pieces": ["full_finetune", "practice"], "stream": str(docs),
                 "out": str(tmp_path / "run"), "evaluation": {"progress": False}}
    logged = []
    learners = {}
    for ratio in (None, 1.0):
        config = load_config(overrides={**overrides, "practice": {"max_ratio": ratio}})
        learner, _ = Experiment(config)._build()
        learner.log = logged.append
        learners[ratio] = learner.examples(Domain("law", documents=[Document(COURT)]))
    unbounded, bounded = learners[None], learners[1.0]
    practice_length = sum(e.length for e in bounded[1:])
    assert 0 < practice_length <= len(COURT) < sum(e.length for e in unbounded[1:])
    events = [e for e in logged if e.get("event") == "practice"]
    assert events[0]["over_max_ratio"] == 0 and events[1]["over_max_ratio"] == len(unbounded) - len(bounded) > 0
    assert events[1]["per_document"][0]["over_max_ratio"] == events[1]["over_max_ratio"]
