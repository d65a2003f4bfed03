"""The training libraries booktune can drive, by name. One file per backend; register it here.

`auto` picks the first registered backend that can train on the device (Unsloth on a CUDA GPU where it is
installed, else hf). A backend that cannot run the asked strategy (Unsloth under booktune's FSDP) gives way to
the first one that can, and says so.
"""

from __future__ import annotations

from booktune.training.backends.base import Backend, BackendError, LoraSettings
from booktune.training.backends.hf import HF
from booktune.training.backends.unsloth import UNSLOTH

REGISTRY: dict[str, Backend] = {b.name: b for b in (UNSLOTH, HF)}  # in order of preference for 'auto'

__all__ = ["REGISTRY", "Backend", "BackendError", "LoraSettings", "for_strategy", "names", "planned", "resolve"]


def names() -> tuple[str, ...]:
    """Every value `train.backend` takes."""
    return ("auto", *REGISTRY)


def _check(name: str) -> None:
    if name not in names():
        raise BackendError(f"config field train.backend: {name!r} is not one of {', '.join(names())}")


def resolve(name: str, device: str, strategy: str = "single") -> tuple[Backend, str]:
    """The backend that trains on `device` under `strategy`, activated (imported first where it patches libraries),
    and a note when the asked one had to give way."""
    _check(name)
    note = ""
    if name == "auto":  # the first that runs here, and runs the strategy
        backend = next(b for b in REGISTRY.values() if b.unavailable(device) is None and
                       (b.runs_fsdp or strategy != "fsdp"))
    else:
        backend = REGISTRY[name]
        why = backend.unavailable(device)
        if why:
            raise BackendError(f"config field train.backend: {why}")
        backend, note = for_strategy(backend, strategy)
    backend.activate()
    return backend, note


def for_strategy(backend: Backend, strategy: str) -> tuple[Backend, str]:
    """`backend`, or under FSDP the first registered backend that runs it, with a note saying why."""
    if strategy != "fsdp" or backend.runs_fsdp:
        return backend, ""
    fallback = next(b for b in REGISTRY.values() if b.runs_fsdp)
    return fallback, f"FSDP trains with the {fallback.name} backend ({backend.name} does not run booktune's FSDP)"


def planned(name: str) -> Backend:
    """The backend a run would use on a GPU, judged without one (for the memory plan): for 'auto', the first one
    installed."""
    _check(name)
    if name == "auto":
        return next(b for b in REGISTRY.values() if b.installed())
    return REGISTRY[name]
