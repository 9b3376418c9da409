"""Tests for lifelong.models: tiny random models, spec parsing, errors, and the embedded model cache."""

from __future__ import annotations

import importlib.metadata
import json
import time

import pytest
import torch
from transformers import LlamaForCausalLM

from lifelong import models
from lifelong.errors import ConfigError, ModelError
from lifelong.models import (
    EMBEDDED_INSTALL,
    embedded_model_dir,
    load_model,
    load_tokenizer,
    parse_tiny_spec,
    tiny_model,
)

FRANCE_PROMPT = "Question: What is the capital of France?\nAnswer:"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def greedy_continuation(model, tokenizer, prompt: str, new_tokens: int = 8) -> str:
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
    return tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)


# ---------------------------------------------------------------- tiny models


def test_tiny_model_vocab_matches_tokenizer(tokenizer):
    model = tiny_model(tokenizer)
    assert isinstance(model, LlamaForCausalLM)
    assert model.config.vocab_size == len(tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_tiny_model_is_deterministic_under_its_seed(tokenizer):
    first, second = tiny_model(tokenizer, seed=3), tiny_model(tokenizer, seed=3)
    other = tiny_model(tokenizer, seed=4)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(first.model.embed_tokens.weight, other.model.embed_tokens.weight)


def test_tiny_model_leaves_global_random_state_alone(tokenizer):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_model(tokenizer, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_tiny_model_forward_pass(tokenizer):
    model = tiny_model(tokenizer, layers=2, hidden=32, heads=2)
    batch = tokenizer(["a short text", "another, somewhat longer text"], return_tensors="pt", padding=True)
    output = model(**batch, labels=batch["input_ids"])
    assert output.logits.shape == (*batch["input_ids"].shape, len(tokenizer))
    assert torch.isfinite(output.loss)


def test_tiny_model_rejects_hidden_not_divisible_by_heads(tokenizer):
    with pytest.raises(ModelError, match="divisible"):
        tiny_model(tokenizer, hidden=30, heads=4)


def test_parse_tiny_spec():
    assert parse_tiny_spec("tiny") == {}
    assert parse_tiny_spec("tiny:layers=3,hidden=32") == {"layers": 3, "hidden": 32}
    assert parse_tiny_spec("tiny: layers=1, heads=2 ") == {"layers": 1, "heads": 2}
    with pytest.raises(ModelError, match="depth"):
        parse_tiny_spec("tiny:depth=3")
    with pytest.raises(ModelError, match="layers=x"):
        parse_tiny_spec("tiny:layers=x")


def test_load_model_tiny_spec():
    model, tokenizer = load_model("tiny:layers=3,hidden=32", device="cpu", seed=1)
    assert model.config.num_hidden_layers == 3
    assert model.config.hidden_size == 32
    assert model.dtype == torch.float32
    assert not model.training
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "right"
    assert model.config.vocab_size == len(tokenizer)
    same, _ = load_model("tiny:layers=3,hidden=32", device="cpu", seed=1)
    assert torch.equal(model.lm_head.weight, same.lm_head.weight)


def test_load_model_dtype_choice():
    model, _ = load_model("tiny", dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="float64"):
        load_model("tiny", dtype="float64", device="cpu")


def test_load_model_from_local_folder(tokenizer, tmp_path):
    tiny_model(tokenizer, seed=5).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, loaded_tokenizer = load_model(str(tmp_path), device="cpu")
    assert torch.equal(model.lm_head.weight, tiny_model(tokenizer, seed=5).lm_head.weight)
    assert loaded_tokenizer("hello")["input_ids"] == tokenizer("hello")["input_ids"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("spec", ["no-such-org/no-such-model-xyz", "./no/such/folder"])
def test_unknown_model_raises_one_line_model_error_quickly(spec):
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        load_model(spec, device="cpu")
    assert time.monotonic() - started < 20
    message = str(caught.value)
    assert f"'{spec}'" in message and "\n" not in message


def test_missing_embedded_package_names_the_install_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModelError) as caught:
        models.embedded_gguf_path()
    assert EMBEDDED_INSTALL in str(caught.value)


# ---------------------------------------------------------------- embedded cache mechanics (fake converter)


def fake_conversion(gguf, folder):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / models.SOURCE_RECORD).write_text(json.dumps({"gguf": str(gguf)}))


def test_embedded_cache_is_built_once_and_atomically(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path))
    def counted_conversion(gguf, folder):
        calls.append(folder)
        fake_conversion(gguf, folder)

    monkeypatch.setattr(models, "_convert_gguf", counted_conversion)
    folder = embedded_model_dir()
    assert folder == tmp_path / "models" / models.EMBEDDED_CACHE_NAME
    assert (folder / "model.safetensors").is_file()
    assert embedded_model_dir() == folder and len(calls) == 1
    assert calls[0] != folder and calls[0].parent == folder.parent
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temp folder left


def test_embedded_cache_keeps_a_concurrent_winner(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path))
    target = tmp_path / "models" / models.EMBEDDED_CACHE_NAME

    def racing_conversion(gguf, folder):
        fake_conversion(gguf, target)  # another process finishes first
        (target / "winner").touch()
        fake_conversion(gguf, folder)

    monkeypatch.setattr(models, "_convert_gguf", racing_conversion)
    assert embedded_model_dir() == target
    assert (target / "winner").is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_killed_conversion_leaves_no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path))

    def killed_conversion(gguf, folder):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert_gguf", killed_conversion)
    with pytest.raises(KeyboardInterrupt):
        embedded_model_dir()
    assert not (tmp_path / "models" / models.EMBEDDED_CACHE_NAME).exists()


# ---------------------------------------------------------------- the embedded model itself


@pytest.mark.embedded
def test_embedded_model_answers_paris():
    model, tokenizer = load_model("smollm2-135m", device="cpu")
    assert isinstance(model, LlamaForCausalLM)
    # On this bare prompt the instruct model's most likely first token is <|im_end|>, so it is
    # asked to complete the answer sentence; with the chat template it answers in full.
    completion = greedy_continuation(model, tokenizer, FRANCE_PROMPT + " The capital of France is")
    assert completion.startswith(" Paris")
    question = [{"role": "user", "content": "What is the capital of France?"}]
    chat = tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False)
    assert "Paris" in greedy_continuation(model, tokenizer, chat, new_tokens=12)


@pytest.mark.embedded
def test_embedded_model_second_load_uses_the_cache():
    folder = embedded_model_dir()
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    source = json.loads((folder / models.SOURCE_RECORD).read_text())
    assert source["gguf"].endswith(".gguf") and len(source["sha256"]) == 64
    started = time.monotonic()
    model, tokenizer = load_model("embedded", device="cpu")
    assert time.monotonic() - started < 30
    assert tokenizer.chat_template
    assert model.config.tie_word_embeddings
    assert "quantization_config" not in model.config.to_dict()
