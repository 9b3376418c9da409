"""Self-directed learning: filters, generation, and the decisions each piece makes (DESIGN §5).

The pipelines are tested with a fake teacher where the tiny random model cannot write checkable
text: what is tested is which items are gaps, which texts are dropped, which rationales are kept.
"""

import json

import pytest
import torch

from lifelong.config import SelfDirectedConfig, load_config
from lifelong.data.records import Document, Domain, MCItem, QAItem
from lifelong.experiment import Experiment
from lifelong.generation import Generated, Generator
from lifelong.learner import Learner
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.critique import verdict
from lifelong.pieces.gap_detection import answer_matches, gap_rate, parse_qa_pairs, select_gaps
from lifelong.pieces.star import final_answer, is_correct
from lifelong.pieces.study_notes import write_notes
from lifelong.selfdirected import filters
from lifelong.selfdirected.base import mix_real
from lifelong.training import Example


class FakeTeacher:
    """Answers each prompt with `reply(prompt, i)` for i in range(n); records every prompt it saw."""

    name = "fake-teacher"

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[tuple[str, list[str]]] = []

    def generate(self, prompts, prompt_name, n=1, *, sample=None, max_new_tokens=None, sources=None):
        self.calls.append((prompt_name, list(prompts)))
        sources = sources or [""] * len(prompts)
        return [[Generated(self.reply(p, i), self.name, prompt_name, p, s) for i in range(n)]
                for p, s in zip(prompts, sources, strict=True)]


def make_learner(tiny, pieces, **overrides):
    settings = {"model": "tiny", "pieces": pieces, "evaluation": {"progress": False},
                "training": {"epochs": 1, "batch_size": 4}, **overrides}
    config = load_config(overrides=settings)
    logged = []
    learner = Learner(tiny_model(tiny[1], seed=0), tiny[1], build_pieces(config.pieces, config), config,
                      log=logged.append)
    return learner, logged


def piece(learner, name):
    return next(p for p in learner.pieces if p.name == name)


ZORB = Domain("zorb", documents=[Document("The zorb of Plinth is blue and lives beside Lake Vessim."),
                                 Document("Quarn ships sail from Orrim at dawn every day.")],
              items=[QAItem("What color is the zorb of Plinth?", "blue", split="train"),
                     MCItem("When do Quarn ships sail?", ("at noon", "at dawn", "at dusk"), 1, split="train"),
                     QAItem("Where does the zorb live?", "beside Lake Vessim", split="train"),
                     QAItem("Where do Quarn ships sail from?", "Orrim")])


@pytest.mark.parametrize("name", ["gap_detection", "study_notes", "star", "critique"])
def test_each_piece_is_selectable_with_its_own_section(name, tmp_path):
    from lifelong.errors import ConfigError
    from lifelong.pieces import PIECES

    path = tmp_path / "run.yaml"
    path.write_text(f"model: tiny\npieces: [lora, study_notes, {name}]\n{name}:\n  prompt: 'Say {{document}}'\n")
    config = load_config(path)
    built = build_pieces(config.pieces, config)[-1]
    assert isinstance(built, PIECES[name]) and built.options is getattr(config, name)
    assert built.options.prompt == "Say {document}"
    assert PIECES[name].__doc__ and __import__(PIECES[name].__module__, fromlist=["_"]).__doc__
    path.write_text(f"pieces: [{name}]\n{name}:\n  no_such_option: 1\n")
    with pytest.raises(ConfigError, match=rf"run.yaml:3: key '{name}\.no_such_option': unknown key"):
        load_config(path)


# ---- filters ---------------------------------------------------------------------------------------
def test_rouge_l_on_known_strings():
    assert filters.rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert filters.rouge_l("The Zorb, blue!", "the zorb blue") == 1.0  # case and punctuation do not count
    assert filters.rouge_l("a b c", "x y z") == 0.0
    assert filters.rouge_l("", "x") == 0.0
    assert filters.lcs_length(list("abcbdab"), list("bdcaba")) == 4


def test_dedup_drops_near_duplicates_at_0_7_and_keeps_distinct_texts():
    texts = ["The zorb of Plinth is blue.",
             "the zorb of plinth is BLUE!",          # same tokens: 1.0
             "Quarn ships sail at dawn.",
             "a b c d e f g h i j",
             "a b c d e f g x y z",                   # LCS 7 of 10: exactly 0.7, dropped
             "a b c d e f q r s t"]                   # LCS 6 of 10 with both: 0.6, kept
    kept, dropped = filters.deduplicate(texts, threshold=0.7)
    assert kept == [0, 2, 3, 5] and dropped == [1, 4]
    kept, dropped = filters.deduplicate(["Quarn ships sail at dawn!", "New text here."],
                                        against=["quarn ships sail at dawn"])
    assert kept == [1] and dropped == [0]


def test_length_and_overlap_filters():
    source = "The zorb of Plinth is blue and lives beside Lake Vessim."
    assert filters.length_ok("one two three four", 4, 10) and not filters.length_ok("one two", 4, 10)
    assert not filters.length_ok("word " * 11, 4, 10)
    assert filters.overlap_ok("The blue zorb lives near Lake Vessim.", source, 0.3, 0.95)
    assert not filters.overlap_ok("Bananas are rich in potassium and fibre.", source, 0.3, 0.95)  # off topic
    assert not filters.overlap_ok(source, source, 0.3, 0.95)  # a copy
    report = filters.filter_texts(
        ["ok", "The blue zorb lives near Lake Vessim.", "Bananas are rich in potassium and fibre.",
         "The zorb, blue, lives near Lake Vessim."], [source] * 4,
        SelfDirectedConfig(min_words=3, min_source_overlap=0.3))
    assert report.kept == [1] and report.too_short_or_long == [0] and report.off_source == [2]
    assert report.duplicates == [3]
    assert report.counts() == {"kept": 1, "dropped_length": 1, "dropped_overlap": 1, "dropped_duplicates": 1}


def test_diversity_on_known_strings():
    assert filters.distinct_n(["a b a b"], 1) == 0.5
    assert filters.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert filters.distinct_n(["a"], 2) is None
    assert filters.self_rouge(["same text here", "same text here", "Same text, here!"]) == 1.0
    assert filters.self_rouge(["a b", "c d"]) == 0.0
    assert filters.self_rouge(["alone"]) is None
    assert filters.diversity(["a b a b"]) == {"distinct_1": 0.5, "distinct_2": 0.6667, "self_rouge": None}


def test_real_text_stays_in_the_mix():
    real = [Example("doc"), Example("q", prompt="Q:", source="question")]
    made = real + [Example(f"note {i}", source="note") for i in range(10)]
    mixed = mix_real(made, 0.4)
    share = sum(e.source in ("document", "question") for e in mixed) / len(mixed)
    assert share >= 0.4 and mixed[:len(made)] == made
    assert mix_real(made, 0.1) == made
    assert mix_real([Example("n", source="note")], 0.5) == [Example("n", source="note")]  # nothing real to repeat


# ---- generation ------------------------------------------------------------------------------------
def test_generation_is_reproducible_under_a_seed_and_records_model_and_prompt(tiny):
    model, tokenizer = tiny
    options = SelfDirectedConfig(max_new_tokens=6, batch_size=2, temperature=1.0)
    generator = Generator(model, tokenizer, "tiny", options, seed=3)
    prompts = ["Write about the zorb.", "Write about Quarn ships.", "Write about Orrim."]
    before = torch.get_rng_state()
    first = generator.generate(prompts, "probe", n=2)
    assert torch.equal(before, torch.get_rng_state())  # the training loop's random state is untouched
    again = Generator(model, tokenizer, "tiny", options, seed=3).generate(prompts, "probe", n=2)
    other = Generator(model, tokenizer, "tiny", options, seed=4).generate(prompts, "probe", n=2)
    assert [[r.text for r in rs] for rs in first] == [[r.text for r in rs] for rs in again]
    assert [[r.text for r in rs] for rs in first] != [[r.text for r in rs] for rs in other]
    assert [len(rs) for rs in first] == [2, 2, 2]
    record = first[1][0]
    assert (record.model, record.prompt_name, record.prompt) == ("tiny", "probe", prompts[1])
    assert set(record.to_dict()) == {"text", "model", "prompt_name", "prompt", "source"}
    new_tokens = []

    def spy(**settings):
        out = type(model).generate(model, **settings)
        new_tokens.append(out.shape[1] - settings["input_ids"].shape[1])
        return out

    model.generate = spy
    try:
        generator.generate(prompts, "probe", n=2, max_new_tokens=4)
    finally:
        del model.generate
    assert new_tokens and max(new_tokens) <= 4  # the cap on new tokens
    assert "<|im_start|>user\nWrite about the zorb." in generator.chat(prompts[0])  # the chat template
    greedy = Generator(model, tokenizer, "tiny", options.model_copy(update={"temperature": 0}))
    assert greedy.generate(prompts[:1], "probe") == greedy.generate(prompts[:1], "probe")
    with pytest.raises(ValueError, match="sampling"):
        greedy.generate(prompts[:1], "probe", n=2)


def test_write_notes_is_callable_on_its_own():
    teacher = FakeTeacher(lambda prompt, i: f"note {i} about: {prompt[-20:]}")
    notes = write_notes(teacher, "The zorb is blue.", 3, prompt="Implications of: {document}")
    assert [n.text for n in notes] == [f"note {i} about: {'Implications of: The zorb is blue.'[-20:]}"
                                       for i in range(3)]
    assert all(n.prompt == "Implications of: The zorb is blue." and n.source == "The zorb is blue." for n in notes)


# ---- gap detection -----------------------------------------------------------------------------------
def test_gap_selection_decisions():
    open_book = [True, True, False, True, False]
    closed_book = [False, True, False, False, True]
    assert select_gaps(open_book, closed_book) == [0, 3]  # right with the document, wrong without
    assert gap_rate(open_book, closed_book) == pytest.approx(2 / 3)
    assert gap_rate([False], [False]) is None
    assert parse_qa_pairs("Here you go:\nQ: What color is the zorb?\nA: blue\n1. Question: Where?\nAnswer: Orrim\n"
                          "Q: dangling") == [("What color is the zorb?", "blue"), ("Where?", "Orrim")]
    assert answer_matches(" blue.\nQuestion: next", "blue") and answer_matches("It is Lake Vessim", "Lake Vessim")
    assert not answer_matches("red", "blue") and not answer_matches("", "blue")
    assert not answer_matches("Lake Orrim", "Lake Vessim") and answer_matches("Lake Vessim", "beside Lake Vessim")


def test_gap_detection_trains_on_the_gaps_only(tiny):
    learner, logged = make_learner(tiny, ["lora", "gap_detection"],
                                   self_directed={"min_source_overlap": 0.0, "min_words": 1})
    gaps = piece(learner, "gap_detection")
    qa = {"The zorb": "Q: What is the zorb's color?\nA: blue\nQ: Which lake is the zorb beside?\n"
                      "A: Lake Vessim\nQ: What is the zorb's color, really?\nA: blue",
          "Quarn ships": "Q: When do Quarn ships sail?\nA: at dawn\nQ: Who is the king?\nA: Tarn"}
    teacher = FakeTeacher(lambda prompt, i: next(v for k, v in qa.items() if k in prompt))
    gaps.teacher = lambda: teacher
    # open-book: right except "king"; closed-book: all wrong ("king" too)
    replies = {True: {"color": "blue", "lake": "Lake Vessim.", "king": "Morn"},
               False: {"color": "red", "lake": "Lake Orrim", "king": "Morn"}}
    gaps.answer = lambda questions, documents: [
        next(v for k, v in replies[documents is not None].items() if k in q) for q in questions]
    examples = learner.examples(ZORB)
    made = [e for e in examples if e.source == "gap_question"]
    assert sorted(e.prompt for e in made) == ["Question: What is the zorb's color?\nAnswer:",
                                              "Question: Which lake is the zorb beside?\nAnswer:"]
    assert sorted(e.text for e in made) == [" Lake Vessim\n", " blue\n"]
    assert any(e.source == "document" for e in examples)
    event = next(e for e in logged if e.get("event") == "self_teach")
    # 5 pairs written; one is a near-duplicate of another and one duplicates a practice question
    assert event["generated"] == 5 and event["dropped_duplicates"] == 2 and event["questions"] == 3
    assert event["open_book_right"] == 2 and event["gaps"] == 2 and event["gap_rate"] == 1.0
    assert event["piece"] == "gap_detection" and event["teacher"] == "fake-teacher"


# ---- study notes -----------------------------------------------------------------------------------
def test_study_notes_drop_duplicates_and_keep_the_documents(tiny):
    learner, logged = make_learner(tiny, ["lora", "study_notes"], study_notes={"sets_per_document": 3},
                                   self_directed={"min_source_overlap": 0.3, "real_share": 0.0})
    notes = piece(learner, "study_notes")
    replies = {"zorb": ["The zorb is a blue creature of Plinth.", "The zorb is a blue creature of Plinth!",
                        "Lake Vessim is home to the blue zorb."],
               "Quarn": ["Ships from Orrim called Quarn leave at dawn.", "Bananas contain potassium and fibre.",
                         "Short."]}
    notes.teacher = lambda: FakeTeacher(lambda prompt, i: replies["zorb" if "zorb" in prompt else "Quarn"][i])
    examples = learner.examples(ZORB)
    assert sorted(e.text for e in examples if e.source == "note") == [
        "Lake Vessim is home to the blue zorb.", "Ships from Orrim called Quarn leave at dawn.",
        "The zorb is a blue creature of Plinth."]
    assert sum(e.source == "document" for e in examples) == 2
    event = logged[-1]
    assert (event["generated"], event["kept"], event["dropped_duplicates"], event["dropped_overlap"],
            event["dropped_length"]) == (6, 3, 1, 1, 1)
    assert {"distinct_1", "distinct_2", "self_rouge", "seconds"} <= set(event)
    learner.config.study_notes.with_document = False
    assert not any(e.source == "document" for e in learner.examples(ZORB))


# ---- STaR --------------------------------------------------------------------------------------------
def test_star_keeps_right_rationales_and_rationalises_wrong_ones(tiny):
    learner, logged = make_learner(tiny, ["lora", "star"], self_directed={"real_share": 0.0})
    star = piece(learner, "star")

    def reply(prompt, i):
        if "correct answer is" in prompt:  # the hint
            if "zorb live" in prompt:
                return "The hint says so: it lives by the lake.\nAnswer: beside Lake Vessim"
            return "Ships sail at noon, I think.\nAnswer: at noon"
        if "zorb of Plinth" in prompt:
            return "The zorb is described as blue.\nAnswer: blue"
        if "Quarn" in prompt:
            return "Noon is when ships sail.\nAnswer: A"
        return "No idea where the zorb lives."

    teacher = FakeTeacher(reply)
    star.teacher = lambda: teacher
    examples = learner.examples(ZORB)
    rationales = {e.prompt: e.text for e in examples if e.source == "rationale"}
    assert rationales == {
        "Question: What color is the zorb of Plinth?\n": "The zorb is described as blue.\nAnswer: blue\n",
        "Question: Where does the zorb live?\n": "The hint says so: it lives by the lake.\nAnswer: beside Lake "
                                                 "Vessim\n"}
    hinted = next(prompts for name, prompts in teacher.calls if name == "star_rationalization")
    assert len(hinted) == 2 and "The correct answer is B. at dawn" in hinted[0]
    assert not any("correct answer" in prompt for prompt in rationales)  # the hint is not trained on
    event = logged[-1]
    assert (event["items"], event["right_first"], event["rationalized"], event["kept"]) == (3, 1, 1, 2)
    assert event["gap_rate"] == pytest.approx(2 / 3)


def test_star_answer_checks():
    item = MCItem("When?", ("at noon", "at dawn"), 1)
    assert is_correct("B", item) and is_correct("(B) at dawn", item) and is_correct("at dawn", item)
    assert not is_correct("A", item) and not is_correct("B. at noon", item) and not is_correct(None, item)
    assert is_correct("It is Lake Vessim.", QAItem("Where?", "Vessim")) and not is_correct("lake", QAItem("?", "x"))
    assert final_answer("step one\nAnswer: 5\nso the answer is: 6") == "6" and final_answer("none") is None


# ---- critique ----------------------------------------------------------------------------------------
def test_critique_drops_what_it_rejects_and_keeps_good_revisions(tiny, tmp_path):
    learner, logged = make_learner(tiny, ["lora", "study_notes", "critique"],
                                   study_notes={"sets_per_document": 3},
                                   self_directed={"min_source_overlap": 0.0, "real_share": 0.0})
    notes = {"zorb": ["The zorb of Plinth is blue.", "Plinth keeps a bright red creature, the zorb.",
                      "Green zorbs swim in Lake Vessim."],
             "Quarn": ["Quarn ships sail at dawn.", "At dusk the ships of Quarn leave Orrim.",
                       "Quarn ships are made of cheese."]}
    verdicts = {"bright red": "No, it is blue.", "Green": "No.", "dusk": "No: dawn, not dusk.",
                "cheese": "Maybe, the passage does not say."}

    def reply(prompt, i):
        if prompt.startswith("Read the passage"):
            return notes["zorb" if "zorb" in prompt else "Quarn"][i]
        if "Rewrite" in prompt:
            if "bright red" in prompt:
                return "The zorb of Plinth has a blue colour and lives by Lake Vessim."
            if "dusk" in prompt:
                return "Ok"  # too short: the revision fails the filters
            return "The zorb is blue as the sky of Plinth in the morning light."
        return next((v for k, v in verdicts.items() if f"Text: {k}" in prompt or k in prompt.split("Text:")[1]),
                    "Yes, it is correct.")

    teacher = FakeTeacher(reply)
    piece(learner, "study_notes").teacher = lambda: teacher
    piece(learner, "critique").teacher = lambda: teacher
    critique = piece(learner, "critique")
    critique.learner.config.critique.unclear = "drop"
    texts = sorted(e.text for e in learner.examples(ZORB) if e.source == "note")
    # accepted: two; "red" revised; "green" revised too; "dusk": its revision is too short; "cheese": unclear, its
    # revision duplicates the "green" one
    assert texts == ["Quarn ships sail at dawn.", "The zorb is blue as the sky of Plinth in the morning light.",
                     "The zorb of Plinth has a blue colour and lives by Lake Vessim.", "The zorb of Plinth is blue."]
    event = logged[-1]
    assert event["piece"] == "critique"
    assert (event["generated"], event["rejected"], event["unclear"], event["revised"], event["dropped"]) == \
           (6, 3, 1, 2, 2)
    learner.out_dir = tmp_path
    learner.examples(ZORB)
    saved = json.loads((tmp_path / "generated" / "zorb.critique.json").read_text())
    assert sum(r["prompt_name"] == "critique" for r in saved["records"]) == 6  # every critique is on record
    assert sum(r["prompt_name"] == "critique_revise" for r in saved["records"]) == 4
    revised = critique.material[next(e for e in critique.material if "colour" in e.text)]
    assert revised.prompt_name == "critique_revise" and revised.model == "fake-teacher"
    assert verdict("Yes.") is True and verdict("no, wrong") is False and verdict("Perhaps") is None
    assert verdict("Incorrect: red") is False and verdict("Not sure") is None


def test_critique_must_follow_a_generating_piece(tiny):
    from lifelong.errors import ConfigError

    with pytest.raises(ConfigError, match="after a piece"):
        make_learner(tiny, ["lora", "critique"])


# ---- self-synthesized rehearsal ----------------------------------------------------------------------
def test_self_synthesized_rehearsal_adds_records_to_the_replay_pool(tiny):
    learner, logged = make_learner(tiny, ["lora", "replay"], replay={"synthetic": 2, "core": False},
                                   self_directed={"min_source_overlap": 0.0})
    replay = piece(learner, "replay")
    replay.add("zorb", Example("The zorb of Plinth is blue."))
    replay.add("zorb", Example("Quarn ships sail at dawn."))
    replies = ["Zorbs are small blue animals of Plinth.", "The zorb of Plinth is blue."]  # second copies a shown text
    teacher = FakeTeacher(lambda prompt, i: replies[i])
    import lifelong.selfdirected.rehearsal as rehearsal

    original = rehearsal.teacher_generator
    rehearsal.teacher_generator = lambda learner: teacher
    try:
        replay.before_round(Domain("ships"))
    finally:
        rehearsal.teacher_generator = original
    assert replay.synthetic == [("zorb", Example("Zorbs are small blue animals of Plinth.", source="rehearsal"))]
    assert Example("Zorbs are small blue animals of Plinth.", source="rehearsal") in replay.pool()
    assert "The zorb of Plinth is blue." in teacher.calls[0][1][0]  # the buffer's texts are shown
    event = logged[-1]
    assert (event["piece"], event["generated"], event["kept"], event["dropped_duplicates"]) == ("replay", 2, 1, 1)
    restored = build_pieces(["replay"], learner.config)[0]
    restored.load_state_dict(json.loads(json.dumps(replay.state_dict())))
    assert restored.synthetic == replay.synthetic


# ---- end to end on the tiny model ----------------------------------------------------------------------
LOOSE = {"min_source_overlap": 0.0, "min_words": 1, "max_new_tokens": 8}


@pytest.mark.parametrize("pieces, extra", [
    (["lora", "study_notes"], {"study_notes": {"sets_per_document": 2}}),
    (["lora", "gap_detection"], {}),
    (["lora", "star"], {}),
    (["lora", "study_notes", "critique"], {"study_notes": {"sets_per_document": 1}}),
    (["lora", "replay"], {"replay": {"synthetic": 2}}),
])
def test_each_piece_runs_end_to_end_and_logs_its_self_teach_event(user_stream, tmp_path, pieces, extra):
    config = load_config(overrides={"model": "tiny", "pieces": pieces, "stream": str(user_stream),
                                    "training": {"epochs": 1, "batch_size": 4},
                                    "evaluation": {"progress": False}, "self_directed": LOOSE, **extra})
    out = tmp_path / "run"
    results = Experiment(config, out_dir=out).run()
    assert results["complete"]
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    teach = [e for e in events if e["event"] == "self_teach"]
    generating = [p for p in pieces if p not in ("lora",)]
    expected_domains = ["b_ships"] if pieces[-1] == "replay" else ["a_colors", "b_ships"]
    for name in generating:
        mine = [e for e in teach if e["piece"] == name]
        assert [e["domain"] for e in mine] == expected_domains, name
        for event in mine:
            assert {"generated", "kept", "dropped_duplicates", "gap_rate", "distinct_1", "distinct_2", "self_rouge",
                    "teacher", "seconds"} <= set(event)
            assert event["teacher"] == "tiny"
    recorded = sorted(p.name for p in (out / "generated").iterdir())
    assert recorded and all(json.loads((out / "generated" / name).read_text())["records"] is not None
                            for name in recorded)


def test_self_teaching_quality_is_measured_without_changing_the_run(user_stream, tmp_path):
    def run(quality: bool, name: str):
        config = load_config(overrides={
            "model": "tiny", "pieces": ["lora", "study_notes"], "stream": str(user_stream),
            "training": {"epochs": 2, "batch_size": 2}, "self_directed": LOOSE,
            "evaluation": {"progress": False, "self_teaching_quality": quality}})
        out = tmp_path / name
        return Experiment(config, out_dir=out).run(), out

    measured, out = run(True, "with")
    plain, _ = run(False, "without")
    assert measured["accuracy_matrix"] == plain["accuracy_matrix"]  # the reference round left no trace
    quality = measured["metrics"]["self_teaching_quality"]
    assert len(quality) == 2 and plain["metrics"]["self_teaching_quality"] is None
    assert len(measured["reference_scores"]) == 2
    for j, (q, r) in enumerate(zip(quality, measured["reference_scores"], strict=True)):
        assert q is None if not r else q == pytest.approx(measured["accuracy_matrix"][j + 1][j] / r)
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    references = [e for e in events if e["event"] == "reference"]
    assert [e["steps"] for e in references] == measured["steps"]
    # the reference round trained exactly as many steps: its last training point is at that step
    last = {}
    for e in events:
        if e["event"] == "train":
            last[e["domain"]] = e["step"]
    assert [last[f"{d} (reference)"] for d in measured["domains"]] == measured["steps"]


def test_the_loop_runs_a_fixed_number_of_steps(tiny):
    learner, _ = make_learner(tiny, ["lora"], training={"epochs": 1, "batch_size": 2})
    domain = Domain("d", documents=[Document(f"Fact number {i} is true.") for i in range(4)])
    assert learner.learn_reference(domain, seed=0, steps=7).steps == 7  # 2 steps an epoch: 4 epochs planned, cut
    assert learner.learn_reference(domain, seed=0, steps=1).steps == 1


def test_a_round_run_again_reuses_its_generated_material(tiny, tmp_path):
    learner, logged = make_learner(tiny, ["lora", "study_notes"], study_notes={"sets_per_document": 1},
                                   self_directed={"min_source_overlap": 0.0})
    learner.out_dir = tmp_path
    notes = piece(learner, "study_notes")
    notes.teacher = lambda: FakeTeacher(lambda prompt, i: f"First note on {prompt[-12:]}")
    first = learner.examples(ZORB)
    notes.teacher = lambda: FakeTeacher(lambda prompt, i: f"Second note on {prompt[-12:]}")
    assert learner.examples(ZORB) == first  # a resumed round trains on the same material
    assert logged[-1]["cached"] is True
    saved = json.loads((tmp_path / "generated" / "zorb.study_notes.json").read_text())
    assert [r["model"] for r in saved["records"]] == ["fake-teacher", "fake-teacher"]
    assert [e["record"] for e in saved["examples"] if e["source"] == "note"] == [0, 1]
    assert all(r["prompt_name"] == "study_notes" and "Passage:" in r["prompt"] for r in saved["records"])


# ---- the embedded model ----------------------------------------------------------------------------------
@pytest.mark.embedded
def test_every_piece_writes_material_with_the_embedded_model():
    from lifelong.models import load_model

    model, tokenizer = load_model("smollm2-135m")
    config = load_config(overrides={
        "model": "smollm2-135m", "pieces": ["lora", "gap_detection", "star", "study_notes", "critique", "replay"],
        "evaluation": {"progress": False}, "study_notes": {"sets_per_document": 2}, "replay": {"synthetic": 1},
        "gap_detection": {"questions_per_document": 2, "answer_tokens": 8}, "critique": {"critique_tokens": 8},
        "self_directed": {"max_new_tokens": 16, "min_source_overlap": 0.0}})
    logged = []
    learner = Learner(model, tokenizer, build_pieces(config.pieces, config), config, log=logged.append)
    domain = Domain("zorvia", documents=[Document("In Zorvia, fever is treated with a tea brewed from quellroot, "
                                                  "a blue tuber that grows beside Lake Vessim.")],
                    items=[QAItem("What color is quellroot?", "blue", split="train")])
    examples = learner.examples(domain)
    events = {e["piece"]: e for e in logged if e.get("event") == "self_teach"}
    assert set(events) == {"gap_detection", "star", "study_notes", "critique"}
    assert all(e["teacher"] == "smollm2-135m" for e in events.values())
    assert events["study_notes"]["generated"] == 2 and events["star"]["items"] == 1
    assert any(e.source == "document" for e in examples)
    replay = piece(learner, "replay")
    for example in examples[:2]:
        replay.add("zorvia", example)
    replay.before_round(Domain("next"))  # self-synthesized rehearsal for the earlier domain
    rehearsal = [e for e in logged if e.get("piece") == "replay"]
    assert rehearsal and rehearsal[0]["generated"] == 1 and rehearsal[0]["rehearsed"] == ["zorvia"]
    generator = piece(learner, "study_notes").teacher()
    notes = write_notes(generator, domain.documents[0].text, 2)
    assert [n.text for n in notes] == [n.text for n in write_notes(generator, domain.documents[0].text, 2)]
    assert all(n.text and n.model == "smollm2-135m" and n.prompt_name == "study_notes" for n in notes)
