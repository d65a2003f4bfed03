"""Everything about chat: templates, the loss masks (labels), the preview, and talking to a trained run.

`booktune.chat` is also callable, mirroring the CLI: `booktune.chat(run_dir, prompt="...")` (see session.py).
"""

from __future__ import annotations

import importlib

from booktune.callable_module import make_callable

_EXPORTS = {
    "build_example": "masking",
    "TokenizedExample": "masking",
    "MaskingError": "masking",
    "prepare_messages": "template",
    "render_prompt_ids": "template",
    "stop_token_ids": "template",
    "render_preview": "preview",
    "mask_summary": "preview",
    "unsloth_parts": "unsloth",
    "chat": "session",
    "load_run_model": "session",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so that importing booktune.chat does not pull in torch and transformers.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"booktune.chat.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'booktune.chat' has no attribute {name!r}")


make_callable(__name__, "booktune.chat.session:chat")  # booktune.chat(run_dir, prompt=...), as the CLI
