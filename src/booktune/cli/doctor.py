"""`booktune doctor`: what a bug report needs."""

from __future__ import annotations


def doctor() -> None:
    """Print what a bug report needs: versions of torch, transformers, TRL, PEFT, bitsandbytes and Unsloth; the CPU's
    instructions and the dtype it trains in; CUDA and each card with its free memory; whether the default model is
    cached; the base evaluations kept."""
    from booktune import api
    from booktune.console import console

    for line in api.doctor():
        console.print(line, markup=False, highlight=False)
