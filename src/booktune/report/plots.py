"""The report's plots as PNG bytes, to embed as base64 (no files beside the HTML)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any


def loss_png(log_history: list[dict[str, Any]]) -> bytes | None:
    """Training and held-out loss against step (booktune.training.plot), or None when nothing was logged."""
    from booktune.training.plot import plot_loss

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_loss(log_history, Path(tmp) / "loss.png", title="loss on answer tokens")
        return path.read_bytes() if path else None


def function_words_png(voice: dict[str, Any], top: int = 15) -> bytes | None:
    """Rates of the author's most used function words, for the author, the base and the tuned model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = voice.get("profiles")
    if not profiles:
        return None
    words = [w for w, _ in sorted(profiles["author"]["function_words"].items(), key=lambda kv: -kv[1])[:top]]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    width = 0.27
    for i, (name, color) in enumerate((("author", "#2ca02c"), ("base", "#7f7f7f"), ("tuned", "#1f77b4"))):
        rates = [profiles[name]["function_words"][w] for w in words]
        ax.bar([x + (i - 1) * width for x in range(len(words))], rates, width, label=name, color=color)
    ax.set_xticks(range(len(words)), words, rotation=45, ha="right")
    ax.set_ylabel("per 1,000 words")
    ax.set_title("function words: author's held-out text vs continuations")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
