import math

import pytest
import torch

from lifelong.config import EvaluationConfig, PromptConfig
from lifelong.data.records import MCItem, QAItem
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator

QUESTIONS = ["What color is the sky?", "Name a large animal.", "What is two plus two?", "Who wrote Hamlet?",
             "Which metal is liquid?", "What do bees make?", "Where is Peru?", "What is ice made of?"]


@pytest.fixture(scope="module")
def evaluator(tiny):
    return Evaluator(EvaluationConfig(batch_size=3, progress=False, max_new_tokens=6), tiny[1])


def test_normalize_answer():
    assert prompts.normalize_answer("  The  Paris! ") == "paris"
    assert prompts.normalize_answer("An Apple, a day") == "apple day"


def test_few_shot_prompt_puts_the_question_last():
    text = prompts.completion_prompt(PromptConfig(), "Why?")
    assert text.startswith("Question: What is the capital of France?\nAnswer: Paris\n\n")
    assert text.endswith("Question: Why?\nAnswer:")


def _logits_predicting(next_tokens: list[int], vocab: int = 20) -> torch.Tensor:
    logits = torch.zeros(len(next_tokens), vocab)
    for position, token in enumerate(next_tokens):
        logits[position, token] = 5.0
    return logits


def test_an_answer_is_right_iff_its_tokens_are_the_argmax_and_the_line_ends(evaluator, monkeypatch):
    from lifelong.evaluation.evaluator import _Sequence

    monkeypatch.setattr(evaluator, "_stop_ids", torch.tensor([19]))
    seq = _Sequence(context=[1, 2, 3], continuation=[8, 9], owner=(0, 0))
    # logits at position t predict token t+1: the answer starts after the context's last token (position 2)
    assert evaluator._greedy_would_answer(_logits_predicting([0, 0, 8, 9, 19]), seq)
    assert not evaluator._greedy_would_answer(_logits_predicting([0, 0, 8, 7, 19]), seq)  # wrong token
    assert not evaluator._greedy_would_answer(_logits_predicting([0, 0, 8, 9, 4]), seq)  # line goes on
    assert not evaluator._greedy_would_answer(_logits_predicting([0, 8, 9, 19, 0]), seq)  # off by one


def test_aliases_count_as_right(tiny, evaluator, monkeypatch):
    """With every token allowed to end the line, an alias equal to the model's first greedy token is right."""
    model, tokenizer = tiny
    question = QUESTIONS[0]
    monkeypatch.setattr(evaluator, "_stop_ids", torch.arange(len(tokenizer)))
    space_tokens = [i for i, t in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
                    if t.startswith("Ġ") and t[1:].isalpha()]
    context = tokenizer(evaluator.context_text(question), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([context])).logits[0, -1]
    best = max(space_tokens, key=lambda i: logits[i].item())
    logits_top = logits.argmax().item()
    alias = tokenizer.decode([best]).strip()
    item = QAItem(question, "certainly not this", aliases=(alias,))
    assert evaluator.teacher_forced_verdicts(model, [item]) == [best == logits_top]
    assert evaluator.teacher_forced_verdicts(model, [QAItem(question, "certainly not this")]) == [False]


def test_mc_picks_the_highest_length_normalised_likelihood(tiny, evaluator):
    model, tokenizer = tiny
    item = MCItem("Pick one.", ("apple", "a much longer banana choice", "kiwi"), 0)
    context = tokenizer(evaluator.context_text(item.question), add_special_tokens=False)["input_ids"]
    expected = []
    for choice in item.choices:
        cont = tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([context + cont])).logits[0]
        log_probs = torch.log_softmax(logits, -1)[len(context) - 1:-1]
        expected.append(log_probs.gather(-1, torch.tensor(cont)[:, None]).sum().item() / len(" " + choice))
    best = max(range(3), key=expected.__getitem__)
    verdicts = [evaluator.mc_verdicts(model, [MCItem(item.question, item.choices, a)])[0] for a in range(3)]
    assert verdicts == [a == best for a in range(3)]


def test_perplexity_matches_the_model_loss(tiny, evaluator):
    model, tokenizer = tiny
    text = "The quick brown fox jumps over the lazy dog."
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    assert evaluator.perplexity(model, [text]) == pytest.approx(math.exp(loss), rel=1e-4)


def test_scores_keep_item_order_and_sample_is_seeded(tiny):
    model, tokenizer = tiny
    config = EvaluationConfig(progress=False, max_items=3)
    items = [QAItem(f"Q{i}?", "x") for i in range(10)]
    first = Evaluator(config, tokenizer, seed=1).sample(items)
    assert first == Evaluator(config, tokenizer, seed=1).sample(items)
    assert first != Evaluator(config, tokenizer, seed=2).sample(items)
    mixed = [QAItem("Q?", "x"), MCItem("M?", ("a", "b"), 0), QAItem("R?", "y")]
    assert len(Evaluator(config, tokenizer).score_items(model, mixed).correct) == 3


def _choice_sequences(evaluator, items):
    import lifelong.evaluation.evaluator as module

    return [module._Sequence(evaluator._context_ids(i.question), evaluator._encode(" " + c), (n, k))
            for n, i in enumerate(items) for k, c in enumerate(i.choices)]


def _answer_log_probs(evaluator, model, sequences, answers_only=False):
    """Each sequence's continuation log-likelihood, read from `_forward_batches`' logits."""
    out = {}
    for batch, logits, offset in evaluator._forward_batches(model, sequences, "t", answers_only=answers_only):
        log_probs = torch.log_softmax(logits.float(), -1)
        for row, seq in enumerate(batch):
            start = len(seq.context) - 1 - offset
            assert start >= 0
            targets = torch.tensor(seq.continuation)
            out[seq.owner] = log_probs[row, start:start + len(targets)].gather(-1, targets[:, None]).sum().item()
    return out


def test_logits_only_at_the_answers_give_the_same_likelihoods(tiny, evaluator):
    """`answers_only` leaves out the positions before a batch's first answer; what remains is unchanged."""
    model, _ = tiny
    items = [MCItem(q, ("red", "blue", "a long green thing"), 1) for q in QUESTIONS]
    sequences = _choice_sequences(evaluator, items)
    full = _answer_log_probs(evaluator, model, sequences)
    assert _answer_log_probs(evaluator, model, sequences, answers_only=True) == pytest.approx(full, abs=1e-4)
    [(_, logits, _)] = list(evaluator._forward_batches(model, sequences[:1], "t", answers_only=True))
    # the head ran on the answer's positions only: each answer token's and the one after (the line's end)
    assert logits.shape[1] == len(sequences[0].continuation) + 1


def test_shared_prefix_cache_gives_the_same_scores(tiny, evaluator, monkeypatch):
    import lifelong.evaluation.evaluator as module

    model, _ = tiny
    items = [MCItem(q, ("red", "blue", "a long green thing"), 1) for q in QUESTIONS]
    sequences = _choice_sequences(evaluator, items)

    def answer_log_probs():
        out = {}
        for batch, logits, offset in evaluator._forward_batches(model, sequences, "t"):
            log_probs = torch.log_softmax(logits.float(), -1)
            for row, seq in enumerate(batch):
                start = len(seq.context) - 1 - offset
                targets = torch.tensor(seq.continuation)
                out[seq.owner] = log_probs[row, start:start + len(targets)].gather(-1, targets[:, None]).sum().item()
        return out

    assert len(module._shared_prefix(sequences)) >= module.MIN_SHARED_PREFIX
    cached = answer_log_probs()
    monkeypatch.setattr(module, "MIN_SHARED_PREFIX", 10**9)
    plain = answer_log_probs()
    assert cached.keys() == plain.keys()
    assert all(abs(cached[k] - plain[k]) < 1e-3 for k in plain)


def test_a_reply_must_say_an_answer_that_normalisation_empties(evaluator):
    """An alias such as "~" normalises to nothing; an empty reply must not match it (either prompt mode)."""
    item = QAItem("Variables begin with which symbol?", "tilde", aliases=("~",))
    assert evaluator.reply_is_correct(" ~\n", item) and evaluator.reply_is_correct(" Tilde.", item)
    assert not evaluator.reply_is_correct("\n", item) and not evaluator.reply_is_correct(" .", item)
    chat = Evaluator(EvaluationConfig(prompt=PromptConfig(mode="chat"), progress=False), evaluator.tokenizer)
    assert chat.reply_is_correct("It begins with ~ always.", item)
    assert not chat.reply_is_correct("It begins with a letter.", item)


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_an_mc_prompt_shared_by_its_choices_gives_the_same_scores(tiny, evaluator, monkeypatch, prefix_cache):
    """The prompt's keys and values computed once per item, then the choices: the per-choice scores stay."""
    import lifelong.evaluation.evaluator as module

    if not prefix_cache:
        monkeypatch.setattr(module, "MIN_SHARED_PREFIX", 10**9)
    model, _ = tiny
    choices = [("red", "blue", "a long green thing"), ("x", "y"), ("one two three four five", "six", "seven eight")]
    items = [MCItem(q, choices[n % 3], n % 2) for n, q in enumerate(QUESTIONS)]
    shared = evaluator.choice_log_likelihoods(model, items, share_question=True)
    flat = evaluator.choice_log_likelihoods(model, items, share_question=False)
    assert shared.keys() == flat.keys() == {(i, c) for i, item in enumerate(items) for c in range(len(item.choices))}
    assert all(abs(shared[k] - flat[k]) < 1e-3 for k in flat)


def test_batches_hold_at_most_batch_size_rows_and_a_token_budget():
    import lifelong.evaluation.evaluator as module

    lengths = [431, 40, 384, 38, 30, 260, 45, 2000] + [35] * 30
    batches = module._budgeted(lengths, batch_size=16)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))  # each once
    budget = 16 * module.TOKENS_PER_ROW
    for batch in batches:
        widest = max(lengths[i] for i in batch)
        assert len(batch) <= 16 and (len(batch) == 1 or len(batch) * widest <= budget)
    assert batches[0] == [7]  # longer than the budget: alone
    assert batches[1] == [0, 2, 5, 6]  # 431, 384, 260, 45: a fifth row would pass the budget
    assert [len(b) for b in batches[2:]] == [16, 16, 1]  # short rows fill whole batches
