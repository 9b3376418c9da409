"""Scores a model on domains (DESIGN §3).

- `qa`: exact match in one batched teacher-forced pass. An answer is right iff every answer
  token is the argmax and the token after it ends the line, which is what greedy decoding
  that stops at the newline would produce. Aliases are tried as further answers.
- `mc`: log-likelihood of each choice after the prompt, divided by the choice's length in
  characters (lm-eval's acc_norm); the highest wins.
- chat mode: generate with the chat template and check that the normalised answer occurs.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from lifelong.config import EvaluationConfig
from lifelong.data.records import Item, MCItem, QAItem
from lifelong.evaluation import prompts

MIN_SHARED_PREFIX = 8  # tokens; below this a prefix cache costs more than it saves
TOKENS_PER_ROW = 128  # a batch holds at most batch_size rows and batch_size * this many padded tokens


@dataclass(frozen=True)
class Scored:
    """Per-item verdicts of one evaluation; `score` is their mean accuracy."""

    correct: tuple[bool, ...]

    @property
    def score(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0


@dataclass(frozen=True)
class _Sequence:
    """One prompt + continuation, tokenised; `owner` says which item and variant it belongs to."""

    context: list[int]
    continuation: list[int]
    owner: tuple[int, int]

    @property
    def ids(self) -> list[int]:
        return self.context + self.continuation


def _budgeted(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into `lengths`, longest first, cut into batches of at most `batch_size` rows whose padded
    size (rows x the longest) stays within batch_size * TOKENS_PER_ROW: long prompts (a law exam's
    passages) go in smaller batches instead of padding fifteen shorter ones to their length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    budget = batch_size * TOKENS_PER_ROW
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _length_grouped(sequences: Sequence[_Sequence], batch_size: int, offset: int = 0) -> Iterator[list[_Sequence]]:
    """Batches of similar length, so padding stays small; the first `offset` tokens (a cached prefix) do not run."""
    for batch in _budgeted([len(s.ids) - offset for s in sequences], batch_size):
        yield [sequences[i] for i in batch]


class Evaluator:
    def __init__(self, config: EvaluationConfig, tokenizer, seed: int = 0):
        self.config = config
        self.prompt = config.prompt
        self.tokenizer = tokenizer
        self.seed = seed
        self._stop_ids = self._line_ending_token_ids(tokenizer)

    @staticmethod
    def _line_ending_token_ids(tokenizer) -> torch.Tensor:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        ids = [i for i, text in enumerate(texts) if text.startswith("\n")]
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
        return torch.tensor(sorted(set(ids)), dtype=torch.long)

    # ---- public API -------------------------------------------------------------------
    def sample(self, items: Sequence[Item], cap: int | None = None) -> list[Item]:
        """The eval items actually scored: all, or a seeded sample of `cap` (default: `max_items`)."""
        items = list(items)
        cap = cap if cap is not None else self.config.max_items
        if cap is None or len(items) <= cap:
            return items
        return random.Random(self.seed).sample(items, cap)

    def score_items(self, model, items: Sequence[Item], desc: str = "eval") -> Scored:
        """Verdicts for qa and mc items, in the order given."""
        verdicts: dict[int, bool] = {}
        qa = [(i, item) for i, item in enumerate(items) if isinstance(item, QAItem)]
        mc = [(i, item) for i, item in enumerate(items) if isinstance(item, MCItem)]
        if qa:
            qa_verdicts = self._qa_verdicts(model, [item for _, item in qa], desc)
            verdicts.update(zip([i for i, _ in qa], qa_verdicts, strict=True))
        if mc:
            mc_verdicts = self.mc_verdicts(model, [item for _, item in mc], desc)
            verdicts.update(zip([i for i, _ in mc], mc_verdicts, strict=True))
        return Scored(tuple(verdicts[i] for i in range(len(items))))

    def score_domain(self, model, domain, desc: str | None = None, cap: int | None = None) -> Scored:
        return self.score_items(model, self.sample(domain.eval_items, cap), desc or domain.name)

    def context_text(self, question: str) -> str:
        return prompts.scoring_context(self.prompt, self.tokenizer, question)

    # ---- qa -----------------------------------------------------------------------------
    def _qa_verdicts(self, model, items: Sequence[QAItem], desc: str) -> list[bool]:
        if self.prompt.mode == "chat":
            return self.generated_verdicts(model, items, desc)
        return self.teacher_forced_verdicts(model, items, desc)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _context_ids(self, question: str) -> list[int]:
        ids = self._encode(self.context_text(question))
        bos = self.tokenizer.bos_token_id
        if self.prompt.mode == "few_shot" and bos is not None and getattr(self.tokenizer, "add_bos_token", False):
            ids = [bos, *ids]
        return ids

    def _sequences(self, items: Sequence[Item], options: Callable[[Item], Sequence[str]]) -> list[_Sequence]:
        """One sequence per item and option (answer variant or choice); each context is encoded once."""
        sequences = []
        for i, item in enumerate(items):
            context = self._context_ids(item.question)
            sequences += [_Sequence(context, self._encode(prompts.answer_continuation(option)), (i, k))
                          for k, option in enumerate(options(item))]
        return sequences

    def teacher_forced_verdicts(self, model, items: Sequence[QAItem], desc: str = "qa") -> list[bool]:
        sequences = self._sequences(items, lambda item: item.answers)
        right = [False] * len(items)
        for batch, logits, offset in self._forward_batches(model, sequences, desc, answers_only=True):
            for row, seq in enumerate(batch):
                if not right[seq.owner[0]] and self._greedy_would_answer(logits[row], seq, offset):
                    right[seq.owner[0]] = True
        return right

    def answer_likelihoods(self, model, items: Sequence[QAItem], desc: str = "qa") -> list[tuple[bool, float]]:
        """Per item, from the same one teacher-forced pass: the exact-match verdict and the best answer
        variant's mean log-probability per token (a graded reward: ReSTEM breaks ties between note sets with it)."""
        sequences = self._sequences(items, lambda item: item.answers)
        right = [False] * len(items)
        best = [-math.inf] * len(items)
        for batch, logits, offset in self._forward_batches(model, sequences, desc, answers_only=True):
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            for row, seq in enumerate(batch):
                owner = seq.owner[0]
                right[owner] = right[owner] or self._greedy_would_answer(logits[row], seq, offset)
                start = len(seq.context) - 1 - offset
                targets = torch.tensor(seq.continuation, device=log_probs.device)
                mean = log_probs[row, start:start + len(targets)].gather(-1, targets[:, None]).mean().item()
                best[owner] = max(best[owner], mean)
        return list(zip(right, best, strict=True))

    def knows(self, model, items: Sequence[Item], min_prob: float = 0.0, desc: str = "knows") -> list[bool]:
        """Per item: scored right, and (qa) the answer's tokens given a geometric-mean probability of at least
        `min_prob`. An answer that wins by a hair flips under any update, even training on general text of its
        own kind; a canary of such items measures noise, not forgetting (docs/documents_only.md)."""
        if min_prob > 0 and self.prompt.mode == "few_shot" and all(isinstance(item, QAItem) for item in items):
            # one teacher-forced pass gives both the verdict and the likelihood (the canary's usual case)
            return [right and math.exp(mean) >= min_prob for right, mean in self.answer_likelihoods(model, items, desc)]
        right = list(self.score_items(model, items, desc).correct)
        qa = [i for i, item in enumerate(items) if isinstance(item, QAItem) and right[i]]
        if min_prob <= 0 or not qa:
            return right
        likelihoods = self.answer_likelihoods(model, [items[i] for i in qa], desc)
        for i, (_, mean_log_prob) in zip(qa, likelihoods, strict=True):
            right[i] = math.exp(mean_log_prob) >= min_prob
        return right

    def _greedy_would_answer(self, logits: torch.Tensor, seq: _Sequence, offset: int = 0) -> bool:
        """`logits[t]` predicts token offset+t+1 of the sequence."""
        start = len(seq.context) - 1 - offset
        predicted = logits[start:start + len(seq.continuation) + 1].argmax(dim=-1)
        answer_ok = predicted[:-1].tolist() == seq.continuation
        return answer_ok and bool(torch.isin(predicted[-1], self._stop_ids))

    def generated_verdicts(self, model, items: Sequence[QAItem], desc: str = "qa") -> list[bool]:
        """Generate each answer and check it (chat mode; also the reference for the fast path)."""
        replies = self.generate(model, [self.context_text(item.question) for item in items], desc)
        return [self.reply_is_correct(reply, item) for reply, item in zip(replies, items, strict=True)]

    def reply_is_correct(self, reply: str, item: QAItem) -> bool:
        """Chat mode: a normalised answer occurs in the reply; few-shot: the reply's first line is one.

        An answer that normalisation empties (an alias such as "~") is compared as written, stripped:
        an empty reply must not match it.
        """
        if self.prompt.mode == "chat":
            text = f" {prompts.normalize_answer(reply)} "
            return any(f" {norm} " in text if (norm := prompts.normalize_answer(a)) else a.strip() in reply
                       for a in item.answers)
        first_line = reply.split("\n", 1)[0]
        said = prompts.normalize_answer(first_line)
        return any(said == norm if (norm := prompts.normalize_answer(a)) else first_line.strip() == a.strip()
                   for a in item.answers)

    @torch.inference_mode()
    def generate(self, model, texts: Sequence[str], desc: str = "generate") -> list[str]:
        """Greedy generation, batched with left padding; few-shot mode stops at the line's end."""
        tokenizer = self.tokenizer
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        max_new = self.config.max_new_tokens
        # Few-shot answers end at the line's end; chat replies at the end-of-turn token.
        stop_ids = self._stop_ids.tolist() if self.prompt.mode == "few_shot" else tokenizer.eos_token_id
        replies: list[str] = []
        was_training = model.training
        model.eval()
        try:
            for start in tqdm(range(0, len(texts), self.config.batch_size), desc=desc,
                              disable=not self.config.progress, leave=False):
                batch = tokenizer(list(texts[start:start + self.config.batch_size]), return_tensors="pt",
                                  padding=True, add_special_tokens=False).to(model.device)
                out = model.generate(**batch, max_new_tokens=max_new, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids)
                new_tokens = out[:, batch["input_ids"].shape[1]:]
                replies.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        finally:
            tokenizer.padding_side = side
            model.train(was_training)
        return replies

    # ---- mc -----------------------------------------------------------------------------
    def mc_verdicts(self, model, items: Sequence[MCItem], desc: str = "mc") -> list[bool]:
        totals = self.choice_log_likelihoods(model, items, desc)
        scores = {owner: total / len(prompts.answer_continuation(items[owner[0]].choices[owner[1]]))
                  for owner, total in totals.items()}
        return [
            max(range(len(item.choices)), key=lambda c, i=i: scores[(i, c)]) == item.answer
            for i, item in enumerate(items)
        ]

    def choice_log_likelihoods(self, model, items: Sequence[MCItem], desc: str = "mc",
                               share_question: bool = True) -> dict[tuple[int, int], float]:
        """Log-likelihood of each choice's continuation after the item's prompt, keyed (item, choice).

        With `share_question` an item's prompt runs once for all its choices (its keys and values are
        reused, then the choices run as a batch); without, each choice is one whole sequence.
        """
        if share_question:
            return self._shared_question_log_likelihoods(model, items, desc)
        totals: dict[tuple[int, int], float] = {}
        sequences = self._sequences(items, lambda i: i.choices)
        for batch, logits, offset in self._forward_batches(model, sequences, desc, answers_only=True):
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            for row, seq in enumerate(batch):
                start = len(seq.context) - 1 - offset
                targets = torch.tensor(seq.continuation, device=log_probs.device)
                totals[seq.owner] = log_probs[row, start:start + len(targets)].gather(-1, targets[:, None]).sum().item()
        return totals

    @torch.inference_mode()
    def _shared_question_log_likelihoods(self, model, items: Sequence[MCItem], desc: str):
        """Two passes per group of items: their prompts (after the shared few-shot prefix), then every
        choice of theirs on the prompts' keys and values. The prompt pass's last logits score each
        choice's first token, the choice pass scores the rest."""
        contexts = [self._context_ids(item.question) for item in items]
        choices = [[self._encode(prompts.answer_continuation(c)) for c in item.choices] for item in items]
        prefix = _shared_prefix([_Sequence(context, [], (i, 0)) for i, context in enumerate(contexts)])
        was_training = model.training
        model.eval()
        totals: dict[tuple[int, int], float] = {}
        try:
            prefix_cache = self._prefix_cache(model, prefix)
            offset = len(prefix) if prefix_cache is not None else 0
            groups = _budgeted([len(context) - offset for context in contexts], self.config.batch_size)
            for group in tqdm(groups, desc=desc, disable=not self.config.progress, leave=False):
                lengths = [len(contexts[i]) - offset for i in group]
                last_positions = (torch.tensor(lengths) - 1)[:, None]  # only these rows' last logits are needed
                prompts_out = self._run_rows(model, [contexts[i][offset:] for i in group], prefix_cache, offset,
                                             [offset] * len(group), logits_to_keep=last_positions)
                last = prompts_out.logits[:, 0].float()
                first = torch.log_softmax(last, dim=-1)  # predicts each choice's first token
                firsts = {(i, c): first[g, toks[0]] for g, i in enumerate(group) for c, toks in enumerate(choices[i])}
                rows = [(g, i, c) for g, i in enumerate(group) for c, toks in enumerate(choices[i]) if len(toks) > 1]
                rows.sort(key=lambda row: len(choices[row[1]][row[2]]), reverse=True)  # chunks of like length pad less
                rest: dict[tuple[int, int], torch.Tensor] = {}
                for k in range(0, len(rows), self.config.batch_size):
                    chunk = rows[k:k + self.config.batch_size]
                    cache = _cache_rows(prompts_out.past_key_values, [g for g, _, _ in chunk])
                    mask = torch.zeros((len(chunk), offset + max(lengths)), dtype=torch.long)
                    mask[:, :offset] = 1
                    for r, (g, _, _) in enumerate(chunk):
                        mask[r, offset:offset + lengths[g]] = 1
                    out = self._run_rows(model, [choices[i][c] for _, i, c in chunk], cache, offset + max(lengths),
                                         [offset + lengths[g] for g, _, _ in chunk], past_mask=mask)
                    log_probs = torch.log_softmax(out.logits.float(), dim=-1)
                    for r, (_, i, c) in enumerate(chunk):
                        targets = torch.tensor(choices[i][c][1:], device=log_probs.device)
                        rest[(i, c)] = log_probs[r, :len(targets)].gather(-1, targets[:, None]).sum()
                owners = list(firsts)
                values = torch.stack([firsts[o] + rest[o] if o in rest else firsts[o] for o in owners]).tolist()
                totals.update(zip(owners, values, strict=True))
        finally:
            model.train(was_training)
        return totals

    def _run_rows(self, model, rows: list[list[int]], cache, past: int, starts: list[int],
                  past_mask: torch.Tensor | None = None, logits_to_keep: torch.Tensor | int = 0):
        """One forward of right-padded `rows` after `past` cached positions; row r's tokens take positions
        starts[r], starts[r] + 1, ... `past_mask` says which cached positions each row sees (default: all);
        `logits_to_keep` (transformers' argument: 0 = all) which positions get logits."""
        pad = self.tokenizer.pad_token_id or 0
        width = max(len(ids) for ids in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), past + width), dtype=torch.long)
        attention[:, :past] = 1 if past_mask is None else past_mask
        for r, ids in enumerate(rows):
            input_ids[r, :len(ids)] = torch.tensor(ids)
            attention[r, past:past + len(ids)] = 1
        positions = torch.tensor(starts)[:, None] + torch.arange(width)[None, :]
        extra = {}
        if cache is not None:
            if past_mask is None:  # the shared prefix: one row, repeated for the batch
                cache = _cache_rows(cache, [0] * len(rows))
            extra = {"past_key_values": cache, "use_cache": True}
        else:
            extra = {"use_cache": True}
        device = model.device
        if isinstance(logits_to_keep, torch.Tensor):
            logits_to_keep = logits_to_keep.to(device)
        return model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                     position_ids=positions.to(device), logits_to_keep=logits_to_keep, **extra)

    # ---- documents ----------------------------------------------------------------------
    def perplexity(self, model, texts: Sequence[str], desc: str = "perplexity") -> float:
        """exp of the mean token negative log-likelihood over the texts."""
        sequences = [_Sequence([], self._encode(text), (i, 0)) for i, text in enumerate(texts)]
        total_nll, total_tokens = 0.0, 0
        for batch, logits, _offset in self._forward_batches(model, sequences, desc):
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            for row, seq in enumerate(batch):
                targets = torch.tensor(seq.continuation[1:], device=log_probs.device)
                total_nll -= log_probs[row, :len(targets)].gather(-1, targets[:, None]).sum().item()
                total_tokens += len(targets)
        return math.exp(total_nll / max(total_tokens, 1))

    # ---- shared -------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward_batches(self, model, sequences: Sequence[_Sequence], desc: str, answers_only: bool = False):
        """Yields (batch, logits, offset) over length-grouped, right-padded batches.

        The few-shot examples open every prompt, so their keys and values are computed once
        (a shared prefix cache) and each batch runs only what follows them: `logits[row, t]`
        predicts token `offset + t + 1` of the row's sequence. With `answers_only` the logits start
        at the batch's first answer-predicting position (the vocabulary head is about a fifth of a
        small model's pass), and `offset` grows by the positions left out.
        """
        pad = self.tokenizer.pad_token_id or 0
        was_training = model.training
        model.eval()
        try:
            prefix = _shared_prefix(sequences)
            prefix_cache = self._prefix_cache(model, prefix)
            offset = len(prefix) if prefix_cache is not None else 0
            batches = list(_length_grouped(sequences, self.config.batch_size, offset))
            for batch in tqdm(batches, desc=desc, disable=not self.config.progress, leave=False):
                rows = [seq.ids[offset:] for seq in batch]
                width = max(len(ids) for ids in rows)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attention = torch.zeros((len(batch), offset + width), dtype=torch.long)
                attention[:, :offset] = 1
                for row, ids in enumerate(rows):
                    input_ids[row, :len(ids)] = torch.tensor(ids)
                    attention[row, offset:offset + len(ids)] = 1
                extra = {}
                if prefix_cache is not None:
                    cache = copy.deepcopy(prefix_cache)
                    cache.batch_repeat_interleave(len(batch))
                    positions = torch.arange(offset, offset + width).expand(len(batch), -1)
                    extra = {"past_key_values": cache, "position_ids": positions.to(model.device), "use_cache": True}
                skipped = min(len(seq.context) - 1 - offset for seq in batch) if answers_only else 0
                logits = model(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
                               logits_to_keep=width - skipped, **extra).logits
                yield batch, logits, offset + skipped
        finally:
            model.train(was_training)

    def _prefix_cache(self, model, prefix: list[int]):
        """Keys and values of the shared prefix, or None when sharing would not pay."""
        if len(prefix) < MIN_SHARED_PREFIX:
            return None
        ids = torch.tensor([prefix], device=model.device)
        return model(input_ids=ids, use_cache=True).past_key_values


def _cache_rows(cache, rows: list[int]):
    """A cache holding the given batch rows of `cache` (repeats allowed), leaving `cache` as it was."""
    selected = copy.copy(cache)
    selected.layers = [copy.copy(layer) for layer in cache.layers]
    selected.batch_select_indices(torch.tensor(rows, device=cache.layers[0].keys.device))
    return selected


def _shared_prefix(sequences: Sequence[_Sequence]) -> list[int]:
    """The longest token prefix that every context shares, leaving each context at least one token.

    The last context token must stay outside the prefix: its logits predict the answer's first token.
    """
    if not sequences:
        return []
    first = sequences[0].context
    limit = min(len(seq.context) for seq in sequences) - 1
    length = 0
    while length < limit and all(seq.context[length] == first[length] for seq in sequences):
        length += 1
    return first[:length]
