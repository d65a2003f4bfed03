"""Plot a lora_sweep results file: the learning curve (held-out perplexity against the share of the training text,
with its log-linear trend carried to the -25 % target) and each lever against the plain control. Not part of the
package.

    python dev/plot_sweep.py dev/sweeps/results.jsonl docs/quality-sweep.png
"""

import argparse
import json
import math
from pathlib import Path

LABELS = {"order": "order", "sched": "schedule", "ema": "EMA", "soup": "soup of", "word_drop": "word dropout",
          "embed_lr": "embeddings lr", "full": "full fine-tune", "wd": "weight decay", "dropout": "LoRA dropout",
          "epochs": "epochs", "targets": "+ lm_head"}


def describe(cfg: dict) -> str:
    """A short label for a config: what differs from the r16 / lr 1e-3 control."""
    parts = [f"{LABELS[k]} {'' if k in ('full', 'targets') else v}".strip() for k, v in cfg.items() if k in LABELS]
    if cfg.get("lr", 1e-3) != 1e-3:
        parts.append(f"lr {cfg['lr']:g}")
    return ", ".join(parts) or f"control, seed {cfg.get('seed', 42)}"


def split(results: list[dict]) -> tuple[float, dict[float, list[float]], list[tuple[str, float]]]:
    """The base perplexity, the learning curve's losses by share, and the levers' perplexities."""
    base, curve, levers = math.nan, {}, []
    for r in results:
        if "base" in r:
            base = r["base"]
            continue
        cfg = r["cfg"]
        plain = set(cfg) <= {"r", "alpha", "lr", "evals", "seed", "subset", "subset_seed"} and cfg["lr"] == 1e-3
        if plain:
            curve.setdefault(cfg.get("subset", 1.0), []).append(math.log(r["final_ppl"]))
        if "subset" not in cfg:
            levers.append((describe(cfg), r["final_ppl"]))
    return base, curve, levers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    base, curve, levers = split([json.loads(x) for x in a.results.read_text().splitlines() if x.strip()])
    target = 0.75 * base
    shares = np.array(sorted(curve))  # [S]
    ppl = np.exp([np.mean(curve[s]) for s in shares])  # [S]: geometric mean over seeds
    slope, icpt = np.polyfit(np.log2(shares), np.log(ppl), 1)
    need = 2 ** ((math.log(target) - icpt) / slope)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1, 1.25]})
    grid = np.geomspace(shares[0], max(need, 1) * 1.2, 100)
    left.plot(shares, ppl, "o-", label="trained on this share (mean of seeds)")
    left.plot(grid, np.exp(icpt + slope * np.log2(grid)), "--", color="grey",
              label=f"log-linear trend: {slope:+.3f} nats per doubling")
    left.axhline(base, color="tab:red", lw=1, label=f"base model {base:.2f}")
    left.axhline(target, color="tab:green", lw=1, label=f"-25 % target {target:.2f}")
    left.axvline(need, color="tab:green", ls=":", lw=1)
    ticks = [2.0 ** k for k in range(int(math.log2(shares[0])), int(math.log2(grid[-1])) + 1)]
    left.set(xscale="log", xlabel="training text, as a share of the demo's two books", ylabel="held-out perplexity",
             title=f"More of the author's text\n(the trend meets -25 % at about {need:.1f}x the demo's)")
    left.set_xticks(ticks, [f"{t:g}" if t >= 1 else f"1/{1 / t:g}" for t in ticks])
    left.minorticks_off()
    left.legend(fontsize=8)
    levers.sort(key=lambda x: x[1])
    colors = ["tab:grey" if n.startswith("control") else "tab:blue" for n, _ in levers]
    right.barh([n for n, _ in levers], [p for _, p in levers], color=colors)
    right.axvline(target, color="tab:green", lw=1, label="-25 % target")
    right.set(xlim=(min(target, min(p for _, p in levers)) - 1, max(p for _, p in levers) + 0.5),
              xlabel="held-out perplexity after training (lower is better)", title="One change at a time, all data")
    right.tick_params(axis="y", labelsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"{a.out}: base {base:.2f}, target {target:.2f}, trend reaches it at {need:.2f}x the text")


if __name__ == "__main__":
    main()
