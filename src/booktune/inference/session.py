"""Talk to a trained run: the base model plus its adapter, one prompt or an interactive, streaming session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from booktune.config import ChatConfig
from booktune.console import console
from booktune.devices import pick_device, pick_dtype
from booktune.inference.generate import generate
from booktune.runfolder import RunError, read_run

HELP = "Type a message. /reset clears the conversation, /exit (or Ctrl-D) leaves."


def load_run_model(run_dir: str | Path, *, device: str | None = None, load_in_4bit: bool | None = None,
                   trust_remote_code: bool = False) -> tuple:
    """(model, tokenizer, metadata) for a RUN folder: base model + LoRA adapter, tokenizer saved with the run.

    The base model's own code runs only when the caller asks (`trust_remote_code`), never because the run folder
    says it trained that way: a shared run folder must not be able to run code on `booktune chat`."""
    from peft import PeftModel
    from safetensors import SafetensorError
    from transformers import AutoTokenizer

    from booktune.model import load_model

    meta = read_run(run_dir)
    train_cfg = meta.get("config", {}).get("train", {})
    if train_cfg.get("trust_remote_code") and not trust_remote_code:
        raise RunError(f"{run_dir}: its base model {meta['base_model']} runs its own Python code; pass "
                       "--trust-remote-code if you trust it")
    device = pick_device(device)
    four_bit = device.startswith("cuda") if load_in_4bit is None else load_in_4bit
    base = load_model(meta["base_model"], device=device, dtype=pick_dtype(train_cfg.get("dtype", "auto"), device),
                      load_in_4bit=four_bit, trust_remote_code=trust_remote_code)
    adapter = Path(run_dir) / "adapter"
    try:
        model = PeftModel.from_pretrained(base, str(adapter))
        tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:  # a missing or damaged file
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise RunError(f"{adapter}: the adapter cannot be loaded ({detail}); rerun `booktune train`") from None
    model.eval()
    return model, tokenizer, meta


def chat(run_dir: str | Path, prompt: str | None, settings: ChatConfig) -> str | None:
    """With `prompt`: print and return one reply. Without: an interactive session that streams tokens."""
    with console.status(f"loading {escape(str(run_dir))}"):
        model, tokenizer, meta = load_run_model(run_dir, device=settings.device,
                                                trust_remote_code=settings.trust_remote_code)
    history = opening(meta, settings)
    sampling = {"max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature,
                "top_p": settings.top_p}
    if prompt is not None:
        reply = generate(model, tokenizer, [*history, user_turn(meta, prompt)], **sampling)
        console.print(reply, markup=False)
        return reply
    _introduce(history, meta.get("answer_prompt") or meta.get("user_prompt"))
    _interactive(model, tokenizer, history, sampling, meta)
    return None


def user_turn(meta: dict[str, Any], text: str) -> dict[str, str]:
    """The user's message in the form the run's answer task trained (RUN/booktune.json's answer_prompt, with
    {question} where the text goes), so a question is asked as training asked it; as typed when the run trained
    continuations only."""
    form = meta.get("answer_prompt")
    return {"role": "user", "content": form.replace("{question}", text) if form else text}


def opening(meta: dict[str, Any], settings: ChatConfig) -> list[dict[str, str]]:
    """The conversation before the first user turn: the system prompt given, else the one the run trained with
    (RUN/booktune.json records it, whichever command trained)."""
    system = settings.system_prompt if settings.system_prompt is not None else meta.get("system_prompt")
    return [{"role": "system", "content": system}] if system else []


def _introduce(history: list[dict[str, str]], user_form: str | None) -> None:
    """What the conversation starts from: the system prompt, and the form of the user turns the run trained on
    (the tuned model answers best when asked that way)."""
    from rich.text import Text

    console.print(f"[dim]{HELP}[/]")
    if history:
        console.print(Text(f"system: {history[0]['content']}", style="dim"))
    if user_form:
        console.print(Text(f"trained on user turns of this form: {user_form}", style="dim"))


def _interactive(model: Any, tokenizer: Any, history: list[dict[str, str]], sampling: dict[str, Any],
                 meta: dict[str, Any]) -> None:
    from transformers import TextStreamer

    start = list(history)
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
        history.append(user_turn(meta, text))
        console.print("[bold blue]model> [/]", end="")
        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        reply = generate(model, tokenizer, history, streamer=streamer, **sampling)
        history.append({"role": "assistant", "content": reply})
