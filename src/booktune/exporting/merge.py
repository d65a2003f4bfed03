"""The adapter merged into its base and saved as a plain transformers checkpoint (safetensors shards, tokenizer,
chat template, generation_config.json), which `AutoModelForCausalLM.from_pretrained(folder)` loads anywhere.

The merge is done in fp32 and cast afterwards: merging into bf16 weights rounds small LoRA deltas away (a bf16
weight near 0.05 has a step of about 2e-4, the size of a typical delta).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from booktune.exporting.errors import ExportError
from booktune.fsutil import atomic_dir

DTYPES = ("bf16", "fp16", "fp32")


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, *, dtype: str = "bf16",
                  stop_ids: Sequence[int] = (), tokenizer: Any = None) -> Path:
    """Merge the PEFT adapter in `adapter_dir` into the base model in `base_dir` (a local HF folder) and write the
    result to `out_dir`, replacing it whole (atomically). The tokenizer and chat template are the adapter folder's
    (the run's own; `tokenizer` when the caller has loaded it already); `stop_ids` become generation_config.json's
    eos_token_id list, so generation stops at every end-of-turn token of the template."""
    import torch

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    if dtype not in DTYPES:
        raise ExportError(f"dtype {dtype!r}: unknown (choose from {', '.join(DTYPES)})")
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ExportError(f"{adapter_dir}: no adapter_config.json here, so no adapter to merge")
    if not (base_dir / "config.json").is_file():
        raise ExportError(f"{base_dir}: no config.json here, so no base model to merge into")
    merged = merged_model(base_dir, adapter_dir)
    merged.to({"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype])
    tokenizer = tokenizer if tokenizer is not None else adapter_tokenizer(adapter_dir)
    try:
        with atomic_dir(out_dir) as tmp:
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            _copy_sentencepiece(tmp, adapter_dir, base_dir)
            generation_config(merged, base_dir, tokenizer, stop_ids).save_pretrained(tmp)
    except OSError as e:
        raise ExportError(f"{out_dir}: write failed: {e.strerror or e}") from None
    return out_dir


def merged_model(base_dir: Path, adapter_dir: Path) -> Any:
    """The base loaded in fp32 with the adapter merged in (PeftModel.merge_and_unload), a plain transformers model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if _is_mxfp4(base_dir):
        from transformers import Mxfp4Config

        # gpt-oss ships its experts in MXFP4; the merge needs them as real numbers
        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    try:
        base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, local_files_only=True,
                                                    use_safetensors=True, **kwargs)
        model = PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ExportError(f"{adapter_dir}: cannot load the adapter onto {base_dir}: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    merged = model.merge_and_unload()
    if getattr(merged, "hf_quantizer", None) is not None:
        merged.hf_quantizer.remove_quantization_config(merged)
    return merged


def generation_config(model: Any, base_dir: Path, tokenizer: Any, stop_ids: Sequence[int]) -> Any:
    """The base's generation settings, with every stop token as eos_token_id and a pad token set."""
    from transformers import GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(str(base_dir), local_files_only=True)
    except OSError:
        config = GenerationConfig.from_model_config(model.config)
    if stop_ids:
        config.eos_token_id = [int(i) for i in stop_ids]
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            int(stop_ids[0]) if stop_ids else None)
    if config.bos_token_id is None and tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    return config


def adapter_tokenizer(adapter_dir: Path) -> Any:
    """The run's own tokenizer and chat template, saved beside its adapter."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(adapter_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ExportError(f"{adapter_dir}: cannot load the run's tokenizer: {str(e).splitlines()[0]}") from None


def _copy_sentencepiece(out: Path, *sources: Path) -> None:
    """transformers 5 saves SentencePiece tokenizers as tokenizer.json alone; llama.cpp needs the tokenizer.model
    (its scores decide the merges), so the first one found travels with the weights."""
    if (out / "tokenizer.model").is_file():
        return
    for source in sources:
        if (source / "tokenizer.model").is_file():
            shutil.copyfile(source / "tokenizer.model", out / "tokenizer.model")
            return


def _is_mxfp4(base_dir: Path) -> bool:
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    return (config.get("quantization_config") or {}).get("quant_method") == "mxfp4"
