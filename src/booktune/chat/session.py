"""Talk to a trained run: the base model plus its adapter, one prompt or an interactive, streaming session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from booktune.console import console

HELP = "Type a message. /reset clears the conversation, /exit (or Ctrl-D) leaves."


def load_run_model(run_dir: str | Path, *, device: str | None = None, load_in_4bit: bool | None = None) -> tuple:
    """(model, tokenizer, metadata) for a RUN folder: base model + LoRA adapter, tokenizer saved with the run."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from booktune.model import load_model, pick_device, pick_dtype
    from booktune.train.artifacts import read_run

    meta = read_run(run_dir)
    adapter = Path(run_dir) / "adapter"
    device = pick_device(device)
    four_bit = device.startswith("cuda") if load_in_4bit is None else load_in_4bit
    train_cfg = meta.get("config", {}).get("train", {})
    trust = bool(train_cfg.get("trust_remote_code", False))
    base = load_model(meta["base_model"], device=device, dtype=pick_dtype(train_cfg.get("dtype", "auto"), device),
                      load_in_4bit=four_bit, trust_remote_code=trust)
    model = PeftModel.from_pretrained(base, str(adapter))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    return model, tokenizer, meta


def chat(
    run_dir: str | Path,
    prompt: str | None = None,
    *,
    system_prompt: str | None = None,
    max_new_tokens: int = 300,
    temperature: float = 0.8,
    top_p: float = 0.95,
    device: str | None = None,
) -> str | None:
    """With `prompt`: print and return one reply. Without: an interactive session that streams tokens."""
    from booktune.evaluate.sample import generate

    with console.status(f"loading {run_dir}"):
        model, tokenizer, meta = load_run_model(run_dir, device=device)
    system = system_prompt if system_prompt is not None else meta.get("system_prompt")
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    if prompt is not None:
        reply = generate(model, tokenizer, [*history, {"role": "user", "content": prompt}], **settings)
        console.print(reply, markup=False)
        return reply
    _interactive(model, tokenizer, history, settings)
    return None


def _interactive(model: Any, tokenizer: Any, history: list[dict[str, str]], settings: dict[str, Any]) -> None:
    from transformers import TextStreamer

    from booktune.evaluate.sample import generate

    start = list(history)
    console.print(f"[dim]{HELP}[/]")
    while True:
        try:
            text = console.input("[bold green]you> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            history[:] = start
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        console.print("[bold blue]model> [/]", end="")
        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        reply = generate(model, tokenizer, history, streamer=streamer, **settings)
        history.append({"role": "assistant", "content": reply})
