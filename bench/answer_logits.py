"""Scoring speed with the vocabulary head run only where scores are read, against the full head.

The evaluator asks the model for logits only at the positions it reads (`logits_to_keep`): from a
batch's first answer-predicting position for qa items, the prompt's last position for an mc item's
prompt pass. The baseline is the same model whose forward ignores the request, computes every
position's logits and then slices them (what the evaluator did before). Both score the same items,
in alternating repeats to cancel machine noise; the bench checks the verdicts are identical and prints
the ratio last.

    OMP_NUM_THREADS=2 python bench/answer_logits.py                       # five-domains (prepared)
    OMP_NUM_THREADS=2 python bench/answer_logits.py --stream example --model tiny
"""

from __future__ import annotations

import argparse

from ab_scoring import compare_ways
from transformers.modeling_utils import slice_logits_to_keep

from lifelong.config import EvaluationConfig
from lifelong.data.stream import load_stream
from lifelong.evaluation.evaluator import Evaluator
from lifelong.models import load_model


class FullHead:
    """Wraps a model so that every forward computes all logits, then keeps those asked for."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, logits_to_keep=0, **kwargs):
        out = self.model(*args, **kwargs)
        out.logits = slice_logits_to_keep(out.logits, logits_to_keep)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--stream", default="five-domains")
    parser.add_argument("--items", type=int, default=100, help="qa items of the first domain")
    parser.add_argument("--exam-items", type=int, default=40, help="mc items of each exam, if the stream has exams")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model, tokenizer = load_model(args.model, seed=0, mixed_precision="auto")
    model.eval()
    stream = load_stream(args.stream)
    evaluator = Evaluator(EvaluationConfig(progress=False), tokenizer)
    sets = {"qa": evaluator.sample(stream.domains[0].eval_items, args.items)}
    for name, exam in stream.exams.items():
        sets[f"exam {name}"] = evaluator.sample(exam.eval_items, args.exam_items)
    print(f"model {args.model}, stream {args.stream}, {args.repeats} repeats (medians)")
    compare_ways(("full head", lambda items: evaluator.score_items(FullHead(model), items).correct),
                 ("answers only", lambda items: evaluator.score_items(model, items).correct), sets, args.repeats)


if __name__ == "__main__":
    main()
