"""On a CUDA machine: the CLI end to end on each training backend, with a random model of the default model's shape
and its real tokenizer (no download). Checks that `booktune train` trains (the loss falls), writes a finished run,
resumes from its last checkpoint, and that `booktune chat` and `booktune plan` run on it.

    python dev/gpu_smoke.py MODEL_FILES DATA OUT [--backends unsloth hf] [--steps 30]

MODEL_FILES holds a config.json and tokenizer files (e.g. the converted default model's folder without its weights);
DATA is a folder made by `booktune prepare` with that tokenizer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def random_model(files: Path, out: Path) -> Path:
    """A randomly initialised model of `files`' config, saved beside copies of its tokenizer files."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(files))
    model.save_pretrained(out, safe_serialization=True)
    for f in files.iterdir():
        if f.name != "config.json" and f.is_file():
            shutil.copy(f, out / f.name)
    return out


def booktune(*args: object) -> tuple[int, str, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "booktune", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**__import__("os").environ, "COLUMNS": "160"})
    return proc.returncode, proc.stdout[-3000:] + proc.stderr[-3000:], time.perf_counter() - started


def check_backend(backend: str, model: Path, data: Path, out: Path, steps: int) -> dict:
    run = out / f"run-{backend}"
    common = ["--model", model, "--backend", backend, "--logging-steps", 5, "--save-steps", steps // 2,
              "--eval-steps", 0, "--learning-rate", "1e-3"]
    rc, log, seconds = booktune("train", data, "--out", run, "--max-steps", steps // 2, *common)
    result = {"backend": backend, "train_rc": rc, "train_s": round(seconds, 1)}
    if rc != 0:
        return result | {"log": log}
    rc, log2, seconds = booktune("train", data, "--out", run, "--max-steps", steps, "--resume", *common)
    meta = json.loads((run / "booktune.json").read_text()) if rc == 0 else {}
    losses = [e["loss"] for e in meta.get("log_history", []) if "loss" in e]
    result |= {"resume_rc": rc, "resume_s": round(seconds, 1), "losses": [round(x, 3) for x in losses],
               "steps": meta.get("train", {}).get("steps"), "plan": [ln for ln in log.splitlines() if "backend:" in ln]}
    if rc != 0:
        return result | {"log": log2}
    rc, reply, _ = booktune("chat", run, "--prompt", "Write one sentence.", "--max-new-tokens", 12)
    result |= {"chat_rc": rc, "reply_chars": len(reply)}
    rc, plan, _ = booktune("plan", "--model", model, "--backend", backend, "--batch-size", 4)
    return result | {"plan_rc": rc, "plan": plan.splitlines()[:3]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--backends", nargs="+", default=["unsloth", "hf"])
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    model = random_model(a.files, a.out / "model")
    for backend in a.backends:
        print(json.dumps(check_backend(backend, model, a.data, a.out, a.steps)), flush=True)


if __name__ == "__main__":
    main()
