"""On a machine with 2+ GPUs: one booktune process trains on the card it was given, not on every visible card.

transformers alone counts every visible card and would wrap the model in nn.DataParallel (which TRL's SFTTrainer
refuses) and send batches to cuda:0; recipe.pin_single_card prevents both. For each device asked (default: the
largest card, then cuda:1) this trains the tiny random model a few steps and checks where the weights, the
gradients and the peak memory ended up.

    python benchmarks/check_cards.py --models /tmp/bench-models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if (HERE.parent / "src" / "booktune").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))


def train_on(device: str | None, model_dir: Path) -> dict:
    import torch
    from bench_models import make_rows
    from datasets import Dataset
    from transformers import AutoTokenizer

    from booktune.model import pick_device
    from booktune.train.backends import LoraSettings, load_for_training
    from booktune.train.packing import choose_batching, training_batches
    from booktune.train.recipe import Precision, sft_args
    from booktune.train.trainer import sft_trainer_class

    prec = Precision(pick_device(device), torch.bfloat16, True, True)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model, lora = load_for_training("hf", str(model_dir), prec, LoraSettings(8, 16, 0.0, ["all-linear"], 0),
                                    max_seq_length=1024, packing=True)
    batching = choose_batching("hf", model, True)
    data, collate = training_batches(make_rows(32, model.config.vocab_size, lo=100, hi=300), batching,
                                     max_len=1024, pad_token_id=tok.pad_token_id)
    args = sft_args(Path(f"/tmp/check-cards/{device}"), prec, epochs=1, max_steps=3, learning_rate=1e-3,
                    warmup_ratio=0.0, batch_size=2, grad_accum=1, logging_steps=1, save_steps=1000,
                    save_total_limit=1, seed=0, max_seq_length=1024,
                    extra={"train_sampling_strategy": batching.sampling})
    for i in range(torch.cuda.device_count()):
        torch.cuda.reset_peak_memory_stats(i)
    trainer = sft_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(data),
                                  processing_class=tok, data_collator=collate, peft_config=lora)
    trainer.train()
    lora_devices = sorted({str(p.device) for p in trainer.model.parameters() if p.requires_grad})
    peaks = [round(torch.cuda.max_memory_allocated(i) / 2**20) for i in range(torch.cuda.device_count())]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {"asked": device, "chosen": prec.device, "trainer_device": str(args.device), "n_gpu": args.n_gpu,
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
    import subprocess

    for device in ("", a.device):  # one process each: transformers caches its device set-up per process
        out = subprocess.run([sys.executable, __file__, "--models", str(a.models), "--child", device],
                             capture_output=True, text=True)
        rows = [line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        print(rows[0] if rows else json.dumps({"asked": device, "error": out.stderr[-1500:]}), flush=True)


if __name__ == "__main__":
    main()
