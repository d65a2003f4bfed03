"""End to end through the CLI on the real embedded default model (SmolLM2-135M-Instruct), for a few steps."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_booktune_run_on_the_default_model(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "booktune", "run", str(ROOT / "examples" / "books"), "--out", str(out),
           "--max-steps", "8", "--learning-rate", "1e-3", "--samples", "1", "--max-new-tokens", "24",
           "--logging-steps", "2", "--save-steps", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "held-out loss (base)" in text and "held-out loss (tuned)" in text
    assert "sample 1" in text and "adapter" in text
    meta = json.loads((out / "run" / "booktune.json").read_text())
    before, after = meta["heldout"]["before"], meta["heldout"]["after"]
    assert after["loss"] < before["loss"]  # 8 steps at lr 1e-3 move the real model toward the books
    assert meta["tokens"]["tokens_lost"] == 0 and meta["tokens"]["dropped"] == 0
    assert (out / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "data" / "stats.json").is_file()
