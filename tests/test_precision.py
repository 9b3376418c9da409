import copy

import pytest
import torch

from lifelong.models import load_model
from lifelong.precision import active_precision, apply_mixed_precision, resolve_precision, set_threads


def _linear_output_dtypes(model, ids):
    seen = []
    hook = model.model.layers[0].self_attn.q_proj.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        out = model(input_ids=ids, labels=ids)
    finally:
        hook.remove()
    return seen, out


def test_bf16_runs_the_forward_in_bfloat16_and_returns_float32():
    model, _ = load_model("tiny", seed=0, mixed_precision="bf16")
    ids = torch.randint(5, 200, (2, 12))
    seen, out = _linear_output_dtypes(model, ids)
    assert seen == [torch.bfloat16]
    assert out.logits.dtype == torch.float32 and out.loss.dtype == torch.float32
    assert next(model.parameters()).dtype == torch.float32  # the weights stay float32
    out.loss.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    assert active_precision(model) == "bf16"
    assert active_precision(copy.deepcopy(model)) == "bf16"


def test_bf16_stays_close_to_float32():
    plain, _ = load_model("tiny", seed=0)
    mixed, _ = load_model("tiny", seed=0, mixed_precision="bf16")
    ids = torch.randint(5, 200, (2, 12))
    seen, out = _linear_output_dtypes(plain, ids)
    assert seen == [torch.float32] and active_precision(plain) == "no"
    with torch.no_grad():
        difference = (plain(input_ids=ids).logits - mixed(input_ids=ids).logits).abs().max().item()
    assert 0 < difference < 0.1


def test_applying_twice_wraps_once():
    model, _ = load_model("tiny", seed=0, mixed_precision="bf16")
    forward = model.forward
    assert apply_mixed_precision(model, "bf16").forward == forward


@pytest.mark.parametrize(("setting", "weights", "native", "expected"), [
    ("no", torch.float32, True, "no"),
    ("bf16", torch.float32, False, "bf16"),
    ("auto", torch.float32, True, "bf16"),
    ("auto", torch.float32, False, "no"),
    ("auto", torch.bfloat16, True, "no"),
    ("bf16", torch.float16, True, "no"),
])
def test_resolve_precision(monkeypatch, setting, weights, native, expected):
    from lifelong import precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    assert resolve_precision(setting, torch.device("cpu"), weights) == expected
    with pytest.raises(ValueError, match="mixed_precision"):
        resolve_precision("fp8", torch.device("cpu"), weights)


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
