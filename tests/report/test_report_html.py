"""`booktune report`: a self-contained HTML page and Markdown from a tiny run, rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import booktune
from booktune.report import write_report
from booktune.runfolder import RunError

CHROMIUM = Path("/usr/bin/chromium")
TINY = {"max_steps": 4, "save_steps": 2, "logging_steps": 1, "eval_steps": 2, "learning_rate": 5e-3,
        "chunk_words": 120, "overlap_words": 20, "samples": 2, "voice_prompts": 4, "answer_questions": 4,
        "max_new_tokens": 8, "answer_tokens": 8, "format": "none"}  # the export has tests of its own (tests/exporting)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, short_book, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("run")
    booktune.run([short_book], out, model=str(tiny_model_dir), **TINY)
    return out / "run"


def test_run_ends_with_a_report_holding_every_section(run_dir):
    html = (run_dir / "report.html").read_text()
    for heading in ("Held-out metrics, before and after training", "Loss curves", "Voice", "Stylometric profile",
                    "Samples: held-out prompts", "Data", "Config"):
        assert f">{heading}<" in html, heading
    assert "bits per byte" in html and "Burrows&#x27; Delta" in html
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}">', html)) == 2
    assert "http://" not in html and "https://" not in html  # nothing to fetch: readable offline
    md = (run_dir / "report.md").read_text()
    assert "| perplexity |" in md and "![training and held-out loss](loss.png)" in md


def test_eval_loss_is_logged_beside_the_training_loss(run_dir):
    import json

    history = json.loads((run_dir / "booktune.json").read_text())["log_history"]
    assert [h["step"] for h in history if "eval_loss" in h] == [2, 4]
    assert any("loss" in h for h in history)


def test_report_rewrites_and_names_a_missing_run(run_dir, tmp_path):
    (run_dir / "report.html").unlink()
    html, md = write_report(run_dir)
    assert html.is_file() and md.is_file()
    with pytest.raises(RunError, match=str(tmp_path)):
        write_report(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_headless_chromium_renders_tables_and_plots(run_dir, tmp_path):
    from PIL import Image

    url = (run_dir / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<table") >= 6 and len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom)) == 2
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 2000)
    dark = sum(image.histogram()[:200])  # text, table borders and plot lines
    assert dark > 0.01 * 1200 * 2000, "the screenshot is blank"
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
