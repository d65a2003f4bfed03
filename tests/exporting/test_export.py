"""`booktune export RUN` on a finished tiny run: each format's files, the model card, the folder rules, bad input."""

from __future__ import annotations

import json
import shutil

import gguf
import pytest
import torch

import booktune
from booktune.exporting.merge import adapter_tokenizer
from booktune.outputs import MANIFEST
from tests.reliability.conftest import booktune_process, cli, one_line_error


@pytest.fixture
def run(tmp_path, tiny_run_dir):
    """A copy of the finished tiny run, as `booktune run` lays it out (OUT/run), with a recorded system prompt."""
    out = tmp_path / "walden" / "run"
    shutil.copytree(tiny_run_dir, out)
    return out


def field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


def test_gguf_export_holds_the_model_its_modelfile_and_card(run):
    result = booktune.export(run, format="gguf")
    out = run / "export" / "gguf"
    assert result.out == out and result.quant == "q8_0"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST, "booktune.json", "walden-q8_0.gguf", "Modelfile", "README.md"])
    reader = gguf.GGUFReader(out / "walden-q8_0.gguf")
    assert field(reader, "general.type") == "model" and field(reader, "general.architecture") == "llama"
    tokenizer = adapter_tokenizer(run / "adapter")
    assert field(reader, "tokenizer.chat_template") == tokenizer.chat_template
    assert {t.tensor_type.name for t in reader.tensors if len(t.shape) == 2} == {"Q8_0"}

    meta = json.loads((run / "booktune.json").read_text())
    modelfile = (out / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./walden-q8_0.gguf\n")
    assert f'SYSTEM "{meta["system_prompt"]}"' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "PARAMETER temperature 0.8" in modelfile

    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: gguf" in card
    assert "thoreau" in card.lower() and "you must hold the rights" in card
    assert "ollama create walden -f Modelfile" in card and "llama-cli -m" in card
    # RUN's own manifest records export/, so a second export or a rerun may replace it
    assert "export" in json.loads((run / MANIFEST).read_text())["entries"]
    assert json.loads((out / "booktune.json").read_text())["files"] == [
        "walden-q8_0.gguf", "Modelfile", "README.md"]


def test_merged_export_loads_with_plain_transformers_and_matches_the_adapter(run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, GenerationConfig

    out = tmp_path / "merged"
    booktune.export(run, out, format="merged", quant="f16")
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    meta = json.loads((run / "booktune.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(meta["base_model"], dtype=torch.float32)
    tuned = PeftModel.from_pretrained(base, run / "adapter")
    ids = torch.tensor([[1, 200, 3000, 42, 7, 99]])
    with torch.no_grad():
        a, b = tuned(ids).logits, merged(ids).logits
    assert torch.allclose(a, b, atol=2e-2)  # the f16 cast of the merged fp32 weights
    stops = GenerationConfig.from_pretrained(out).eos_token_id
    assert 2 in (stops if isinstance(stops, list) else [stops])  # <|im_end|>, the template's turn end
    assert "library_name: transformers" in (out / "README.md").read_text()


def test_lora_gguf_export_is_an_adapter_for_the_base(run, tmp_path):
    out = tmp_path / "lora"
    booktune.export(run, out, format="lora-gguf")
    reader = gguf.GGUFReader(out / "walden-lora.gguf")
    assert field(reader, "general.type") == "adapter" and field(reader, "adapter.type") == "lora"
    assert any(t.name.endswith(".lora_a") for t in reader.tensors)


def test_export_refuses_bad_input_in_one_line(run, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "booktune.json").unlink()
    one_line_error(cli("export", unfinished), "no finished run")
    one_line_error(cli("export", run, "--format", "onnx"), "format")
    one_line_error(cli("export", run, "--format", "merged", "--quant", "q8_0"), "not for format merged")
    one_line_error(cli("export", run, "--quant", "q5_x"), "quant")
    one_line_error(cli("export", run, "--format", "none"), "nothing to export")
    one_line_error(cli("export", run, "--push-to-hub", "not-a-repo"), "push_to_hub")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    one_line_error(cli("export", run, "--out", mine), "did not write", "--overwrite")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_killed_export_never_looks_finished(run, tmp_path):
    """Killed after its files are written but before its marker: the folder holds no booktune.json, and the next
    export replaces what the killed one wrote."""
    out = tmp_path / "killed"
    proc = booktune_process("export", run, "--out", out, "--format", "lora-gguf", kill_at="export:files")
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (out / "booktune.json").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    booktune.export(run, out, format="lora-gguf")
    assert (out / "booktune.json").is_file()


def test_push_without_the_hub_fails_in_one_line_and_keeps_the_export(run, tmp_path):
    """The upload is the export's one network call; offline (as the tests run) it fails in one line, after the
    export folder is complete."""
    out = tmp_path / "pushed"
    one_line_error(cli("export", run, "--out", out, "--format", "lora-gguf", "--push-to-hub", "me/walden-voice"),
                   "push to me/walden-voice", "complete in")
    assert (out / "booktune.json").is_file()
