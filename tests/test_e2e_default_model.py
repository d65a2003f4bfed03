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
           "--answer-tokens", "24",
           "--logging-steps", "2", "--save-steps", "4", "--tasks", "continue,answer",
           # a small held-out split, two voice prompts and two questions: every stage runs, scoring stays minutes
           "--eval-fraction", "0.04", "--voice-prompts", "2", "--answer-questions", "2", "--eval-steps", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "held-out loss (base)" in text and "held-out loss (tuned)" in text
    assert "sample 1" in text and "adapter" in text
    meta = json.loads((out / "run" / "booktune.json").read_text())
    before, after = meta["heldout"]["before"], meta["heldout"]["after"]
    assert after["loss"] < before["loss"]  # 8 steps at lr 1e-3 move the real model toward the books
    assert after["answer"]["tokens"] == before["answer"]["tokens"] > 0  # the passages given held-out questions
    stats = json.loads((out / "data" / "stats.json").read_text())
    assert stats["questions"]["kept"] > 0 and stats["questions"]["examples"]["eval"] > 0
    answers = meta["answers"]
    assert answers["questions"] == 2 and answers["attribution_authors"] == ["Bertrand Russell", "Henry David Thoreau"]
    assert "answers attributed to the author" in " ".join(text.split())
    assert meta["tokens"]["tokens_lost"] == 0 and meta["tokens"]["dropped"] == 0
    assert (out / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "data" / "stats.json").is_file()

    # it ends with the export: one q8_0 GGUF of the merged model, with a Modelfile and a model card
    import gguf

    export = out / "export"
    assert str(export / "out-q8_0.gguf") in " ".join(text.split()) or "out-q8_0.gguf" in text
    reader = gguf.GGUFReader(export / "out-q8_0.gguf")
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == 2  # <|im_end|>, where each answer ends
    assert "<|im_start|>assistant" in reader.fields["tokenizer.chat_template"].contents()
    modelfile = (export / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./out-q8_0.gguf") and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert f'SYSTEM "{meta["system_prompt"]}"' in modelfile
    card = (export / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "perplexity" in card

