"""Everything about chat: templates, the loss masks (labels), the preview, and talking to a trained run.

`booktune.chat` is also callable, mirroring the CLI: `booktune.chat(run_dir, prompt="...")` (see session.py).
"""

from __future__ import annotations

import importlib
import sys
import types

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


class _CallableModule(types.ModuleType):
    """`booktune.chat(...)` is the API twin of `booktune chat`, while `booktune.chat.build_example` etc. stay
    reachable: a module whose class has __call__ serves both."""

    def __call__(self, *args, **kwargs):
        return __getattr__("chat")(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
