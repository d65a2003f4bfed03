"""Bad input gets a one-line error, and no export is ever left half-written under its final name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import gguf
import pytest

from booktune.exporting.errors import ExportError
from booktune.exporting.gguf_arch import ARCHES
from booktune.exporting.gguf_lora import write_lora_gguf
from booktune.exporting.gguf_model import write_gguf

ROOT = Path(__file__).resolve().parents[2]


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def llama(tiny):
    return tiny("llama", fitted=False, small_vocab=True)


def test_unknown_quant(llama, tmp_path):
    with pytest.raises(ExportError) as err:
        write_gguf(llama.base, tmp_path / "m.gguf", quant="q5_z")
    assert one_line(err).startswith("quant 'q5_z': unknown (choose from f16, bf16, q8_0, q4_0, q2_k")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_architecture(llama, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64)).save_pretrained(tmp_path / "gpt2")
    for export in (lambda: write_gguf(tmp_path / "gpt2", tmp_path / "m.gguf"),
                   lambda: write_lora_gguf(llama.adapter, tmp_path / "gpt2", tmp_path / "m.gguf")):
        with pytest.raises(ExportError) as err:
            export()
        message = one_line(err)
        assert "architecture 'gpt2' cannot be exported to GGUF by booktune" in message
        assert all(name in message for name in ARCHES)


def test_k_quant_without_llama_quantize(llama, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ExportError) as err:
        write_gguf(llama.base, tmp_path / "m.gguf", quant="Q4_K_M")
    message = one_line(err)
    assert "llama-quantize" in message and "use q8_0" in message
    assert not (tmp_path / "m.gguf").exists()


@pytest.mark.skipif(shutil.which("llama-quantize") is None, reason="no llama-quantize on PATH")
def test_k_quant_with_llama_quantize(llama, tmp_path):
    path = write_gguf(llama.base, tmp_path / "m.gguf", quant="q4_k_m")
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q4_K_M
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]  # the f16 input is gone


def test_missing_weights(llama, tmp_path):
    folder = tmp_path / "no-weights"
    shutil.copytree(llama.base, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ExportError) as err:
        write_gguf(folder, tmp_path / "m.gguf")
    assert one_line(err) == f"{folder / 'model.safetensors'}: missing (a merged model folder holds safetensors weights)"


def test_full_disk_leaves_no_gguf_that_looks_complete(llama, tmp_path):
    """A write that fails half-way (here a file-size limit, as a full disk does) leaves the earlier export at
    the target untouched and no other file behind."""
    target = tmp_path / "model.gguf"
    target.write_bytes(b"an earlier, complete export")
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write raises OSError instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        from booktune.exporting import ExportError, write_gguf
        try:
            write_gguf({str(llama.base)!r}, {str(target)!r}, quant="f16")
        except ExportError as e:
            print("ExportError:", e)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.strip().startswith(f"ExportError: {target}: write failed: "), proc.stderr[-2000:]
    assert target.read_bytes() == b"an earlier, complete export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.gguf"]
