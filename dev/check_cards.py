"""On a machine with 2+ GPUs: one booktune process trains on the card it was given, not on every visible card.

transformers alone counts every visible card and would wrap the model in nn.DataParallel (which TRL's SFTTrainer
refuses) and send batches to cuda:0; recipe.pin_single_card prevents both. For each device asked (default: the
largest card, then cuda:1) this trains the tiny random model a few steps with train_throughput.py's booktune
trainer and checks where the LoRA weights and the peak memory ended up.

    python dev/check_cards.py --models /tmp/bench-models
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(HERE))  # train_throughput.py's booktune trainer


def train_on(device: str | None, model_dir: Path) -> dict:
    import torch
    import train_throughput as tt

    from booktune.devices import pick_device

    chosen = pick_device(device)
    spec = {"shape": "tiny", "run": f"cards-{chosen}", "model_dir": str(model_dir), "seq": 2048, "steps": 2,
            "warmup": 1, "batch": 2, "lora_r": 8, "data": "seed"}
    trainer = tt.run_booktune(spec, "hf", device=chosen)[0]
    for i in range(torch.cuda.device_count()):
        torch.cuda.reset_peak_memory_stats(i)
    trainer.train()
    args = trainer.args
    lora_devices = sorted({str(p.device) for p in trainer.model.parameters() if p.requires_grad})
    peaks = [round(torch.cuda.max_memory_allocated(i) / 2**20) for i in range(torch.cuda.device_count())]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {"asked": device, "chosen": chosen, "trainer_device": str(args.device), "n_gpu": args.n_gpu,
            "wrapped": type(trainer.model_wrapped).__name__, "lora_on": lora_devices, "peak_mib_per_card": peaks,
            "losses": [round(x, 4) for x in losses]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    ap.add_argument("--device", default="cuda:1", help="the card to ask for by name, after the default one")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    from bench_models import build_model

    path = build_model("tiny", a.models)
    if a.child is not None:
        print("RESULT " + json.dumps(train_on(a.child or None, path)), flush=True)
        return
    for device in ("", a.device):  # one process each: transformers caches its device set-up per process
        out = subprocess.run([sys.executable, __file__, "--models", str(a.models), "--child", device],
                             capture_output=True, text=True)
        rows = [line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        print(rows[0] if rows else json.dumps({"asked": device, "error": out.stderr[-1500:]}), flush=True)


if __name__ == "__main__":
    main()
