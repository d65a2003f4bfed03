"""The README.md model card every export carries, written with huggingface_hub's ModelCard: the base model's Hub
id, the books, the training settings, held-out loss before and after, samples, how to load the files, and the
licences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from booktune.outputs import OutputDir

LIBRARY = {"merged": "transformers", "gguf": "gguf", "ollama": "gguf", "lora-gguf": "gguf"}
TRAIN_KEYS = ("learning_rate", "epochs", "max_steps", "lora_r", "lora_alpha", "lora_dropout", "max_seq_length",
              "batch_size", "gradient_accumulation_steps", "load_in_4bit", "packing")


def write_card(folder: OutputDir, meta: dict[str, Any], fmt: str, quant: str, result: Any) -> Path:
    return folder.write_text("README.md", card_text(meta, fmt, quant, result.commands))


def card_text(meta: dict[str, Any], fmt: str, quant: str, commands: list[str]) -> str:
    from huggingface_hub import ModelCard, ModelCardData

    base = base_id(meta)
    data = ModelCardData(base_model=base, library_name=LIBRARY[fmt], license=base_license(meta),
                         tags=["booktune", "lora", fmt.replace("lora-gguf", "gguf")])
    body = "\n\n".join([
        f"# {base} in the voice of its books\n\nA LoRA adapter trained by booktune "
        f"{meta.get('booktune_version', '')} on {base}, exported as {fmt} ({quant}).",
        books_section(meta), settings_section(meta), heldout_section(meta), samples_section(meta),
        "## Use\n\n" + "\n".join(f"    {c}" for c in commands) if commands else "",
        licence_section(meta),
    ])
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n"))


def base_id(meta: dict[str, Any]) -> str:
    """The base model as the Hub names it: the default's Hub id, never this machine's cache folder."""
    from booktune.model import portable_name

    model = meta.get("config", {}).get("train", {}).get("model") or meta.get("base_model")
    return portable_name(model) or str(model)


def base_license(meta: dict[str, Any]) -> str | None:
    """The base model's licence id from its own card's metadata, when its folder has one (the default model's
    is Apache-2.0)."""
    from booktune.model import DEFAULT_MODEL_NAME, resolve_model

    if base_id(meta) == DEFAULT_MODEL_NAME:
        return "apache-2.0"
    model = meta.get("config", {}).get("train", {}).get("model") or ""
    try:
        source = resolve_model(model)
    except ValueError:
        return None
    readme = Path(source.path) / "README.md"
    if source.hub or not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    return ModelCard.load(readme).data.to_dict().get("license")


def books_section(meta: dict[str, Any]) -> str:
    stats_file = Path(meta.get("data_dir", "")) / "stats.json"
    if not stats_file.is_file():
        return "## Books\n\nThe data folder the run trained on is not on this machine."
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    lines = ["## Books", "", "| title | author | words | training passages |", "|---|---|---:|---:|"]
    lines += [f"| {_cell(b.get('title'))} | {_cell(b.get('author'))} | {b.get('words', 0):,} | {b.get('train', 0)} |"
              for b in stats.get("books", [])]
    return "\n".join(lines)


def settings_section(meta: dict[str, Any]) -> str:
    train = meta.get("config", {}).get("train", {})
    lines = ["## Training", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {train[k]} |" for k in TRAIN_KEYS if k in train]
    steps = (meta.get("train") or {}).get("steps")
    if steps:
        lines.append(f"| optimizer steps | {steps} |")
    return "\n".join(lines) + "\n\nLoss on the answer tokens only: the book's own passage after a lead-in."


def heldout_section(meta: dict[str, Any]) -> str:
    held = meta.get("heldout") or {}
    before, after = held.get("before") or {}, held.get("after") or {}
    if not before.get("loss") or not after.get("loss"):
        return "## Held-out loss\n\nNot measured for this run (`booktune evaluate RUN` measures it)."
    return "\n".join([
        "## Held-out loss", "", "On passages held out from each book's end, never trained on.", "",
        "| | base | tuned |", "|---|---:|---:|",
        f"| loss (nats per answer token) | {before['loss']:.4f} | {after['loss']:.4f} |",
        f"| perplexity | {before['perplexity']:.2f} | {after['perplexity']:.2f} |",
    ])


def samples_section(meta: dict[str, Any]) -> str:
    samples = meta.get("samples") or []
    if not samples:
        return ""
    parts = ["## Samples", ""]
    for s in samples:
        parts += [f"**Lead-in:** {_quote(s.get('lead_in', ''))}", "", f"**Tuned:** {_quote(s.get('tuned', ''))}", "",
                  f"**Base:** {_quote(s.get('base', ''))}", ""]
    return "\n".join(parts)


def licence_section(meta: dict[str, Any]) -> str:
    licence = base_license(meta)
    named = f"the base model's licence ({licence})" if licence else "the base model's licence (see its model card)"
    return (f"## Licence\n\nThe weights are a derivative of {base_id(meta)} and carry {named}. The adapter learned "
            "from the books above: you must hold the rights to train on them and to share what was trained.")


def _cell(text: Any) -> str:
    return str(text or "-").replace("|", "\\|").replace("\n", " ")


def _quote(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;")
