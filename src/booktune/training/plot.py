"""The loss plot written beside every run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def loss_series(log_history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for entry in log_history:
        if key in entry and "step" in entry:
            steps.append(int(entry["step"]))
            values.append(float(entry[key]))
    return steps, values


def plot_loss(log_history: list[dict[str, Any]], path: str | Path, title: str = "booktune training") -> Path | None:
    """Training (and eval, when logged) loss against step, as a PNG. None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = loss_series(log_history, "loss")
    if not train[0]:  # a run shorter than logging_steps: its mean training loss, at its last step
        train = loss_series(log_history, "train_loss")
    held = loss_series(log_history, "eval_loss")
    if not train[0] and not held[0]:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train[0]:
        ax.plot(*train, "o-" if len(train[0]) == 1 else "-", label="train loss", color="#1f77b4")
    if held[0]:
        ax.plot(*held, "o-", label="held-out loss", color="#d62728")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (answer tokens)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
