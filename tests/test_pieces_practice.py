"""The practice piece: rule-made questions, cloze deletions and restatements from plain documents."""

from __future__ import annotations

import json

from lifelong.config import PracticeConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.experiment import Experiment
from lifelong.pieces.practice import make_practice, sentences, spans

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
                                           "dropped": {}}
