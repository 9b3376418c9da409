"""Scoring speed: lifelong's evaluator against lm-evaluation-harness, same model, prompts and items.

Both sides score the same items with the same model object in one process, alternating which goes
first in each repeat so that drift in the machine's load hits both alike:

- `lm-eval`: lm-evaluation-harness's HFLM wrapping the model instance; `mc` items as
  loglikelihood requests (context = lifelong's few-shot prompt, continuation = " " + choice),
  scored as acc_norm (log-likelihood / characters, as lm-eval's multiple-choice tasks do);
  `qa` items as generate_until requests (greedy, until "\\n"), the first line normalised and
  compared with the answer and its aliases;
- `lifelong`: `Evaluator.score_items` (teacher-forced exact match with the line-end check; mc
  acc_norm; shared few-shot prefix computed once; an mc item's question computed once for all its
  choices; length-grouped batches).

Asserts that every verdict is the same, prints items per second for both and, last, the ratio
lifelong/lm-eval (target: at least 2).

lm-eval is installed only in the bench's environment (pinned in bench/requirements.txt):

    python -m venv --system-site-packages bench/.venv
    bench/.venv/bin/pip install -r bench/requirements.txt
    OMP_NUM_THREADS=1 bench/.venv/bin/python bench/scoring.py --repeats 3     # smollm2-135m, example stream
    OMP_NUM_THREADS=1 bench/.venv/bin/python bench/scoring.py --model tiny    # quick (tiny: mostly wrong)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

from lifelong.config import EvaluationConfig
from lifelong.data.records import MCItem, QAItem
from lifelong.data.stream import load_stream
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.models import load_model

try:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
except ImportError:
    sys.exit("bench/scoring.py needs lm-evaluation-harness in the bench's environment: python -m venv "
             "--system-site-packages bench/.venv && bench/.venv/bin/pip install -r bench/requirements.txt, "
             "then run it with bench/.venv/bin/python")


def lm_eval_verdicts(lm: HFLM, evaluator: Evaluator, items, max_gen_toks: int) -> tuple[bool, ...]:
    """The verdicts lm-eval's requests give: generate_until for qa, loglikelihood (acc_norm) for mc."""
    verdicts: dict[int, bool] = {}
    qa = [(i, item) for i, item in enumerate(items) if isinstance(item, QAItem)]
    mc = [(i, item) for i, item in enumerate(items) if isinstance(item, MCItem)]
    if qa:
        until = {"until": ["\n"], "do_sample": False, "max_gen_toks": max_gen_toks}
        requests = [Instance("generate_until", {}, (evaluator.context_text(item.question), until), k)
                    for k, (_, item) in enumerate(qa)]
        replies = lm.generate_until(requests, disable_tqdm=True)
        for (i, item), reply in zip(qa, replies, strict=True):
            verdicts[i] = evaluator.reply_is_correct(reply, item)
    if mc:
        requests, owners = [], []
        for i, item in mc:
            context = evaluator.context_text(item.question)
            for c, choice in enumerate(item.choices):
                requests.append(Instance("loglikelihood", {}, (context, prompts.answer_continuation(choice)),
                                         len(requests)))
                owners.append((i, c))
        results = lm.loglikelihood(requests, disable_tqdm=True)
        scores: dict[int, list[float]] = {}
        for (i, _c), (loglikelihood, _greedy), request in zip(owners, results, requests, strict=True):
            scores.setdefault(i, []).append(loglikelihood / len(request.args[1]))
        for i, item in mc:
            verdicts[i] = max(range(len(item.choices)), key=scores[i].__getitem__) == item.answer
    return tuple(verdicts[i] for i in range(len(items)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--stream", default="example")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="both sides")
    parser.add_argument("--max-gen-toks", type=int, default=32, help="lm-eval's generation cap (lifelong's "
                        "evaluation.max_new_tokens default)")
    args = parser.parse_args()
    logging.getLogger("lm-eval").setLevel(logging.ERROR)

    model, tokenizer = load_model(args.model, seed=0)
    stream = load_stream(args.stream)
    items = [item for domain in [*stream.domains, stream.canary] if domain for item in domain.eval_items]
    evaluator = Evaluator(EvaluationConfig(progress=False, batch_size=args.batch_size), tokenizer)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, add_bos_token=False)
    sides = {
        "lm-eval": lambda subset: lm_eval_verdicts(lm, evaluator, subset, args.max_gen_toks),
        "lifelong": lambda subset: evaluator.score_items(model, subset).correct,
    }
    n_qa = sum(isinstance(item, QAItem) for item in items)
    print(f"model {args.model}, {len(items)} items of the {args.stream} stream ({n_qa} qa, {len(items) - n_qa} mc), "
          f"batch {args.batch_size}", flush=True)
    for side in sides.values():  # warm-up
        side(items[:4] + items[-4:])
    times: dict[str, list[float]] = {name: [] for name in sides}
    verdicts: dict[str, tuple[bool, ...]] = {}
    for repeat in range(args.repeats):
        for name in (list(sides) if repeat % 2 == 0 else list(reversed(sides))):
            started = time.perf_counter()
            verdicts[name] = sides[name](items)
            times[name].append(time.perf_counter() - started)
            print(f"repeat {repeat + 1} {name:>8}: {times[name][-1]:.2f} s, accuracy "
                  f"{sum(verdicts[name]) / len(items):.3f}", flush=True)
    differ = [i for i, (a, b) in enumerate(zip(verdicts["lm-eval"], verdicts["lifelong"], strict=True)) if a != b]
    for i in differ:
        print(f"verdicts differ on item {i}: {items[i]} lm-eval {verdicts['lm-eval'][i]} "
              f"lifelong {verdicts['lifelong'][i]}")
    assert not differ, f"{len(differ)} of {len(items)} verdicts differ"
    print(f"identical verdicts on {len(items)} of {len(items)} items")
    speed = {name: len(items) / statistics.median(values) for name, values in times.items()}
    for name, value in speed.items():
        print(f"median {name:>8}: {statistics.median(times[name]):.2f} s, {value:.2f} items/s")
    print(f"ratio lifelong/lm-eval (items per second): {speed['lifelong'] / speed['lm-eval']:.2f}")


if __name__ == "__main__":
    main()
