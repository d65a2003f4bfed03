"""The summary `booktune run` prints at its end (report/summary.py)."""

from booktune.console import console
from booktune.evaluation.compare import Comparison
from booktune.report.summary import print_summary


def test_a_long_sample_wraps_inside_its_panel_and_loses_no_word(monkeypatch, capsys):
    monkeypatch.setattr(console, "width", 60)
    words = [f"w{i}" for i in range(150)]
    sample = Comparison("walden-00001", "the lead-in", "base", " ".join(words), "the author's passage")
    print_summary([sample], {}, {}, {"adapter": "/tmp/run/adapter"}, 1.0)
    lines = capsys.readouterr().out.splitlines()
    panel = [line for line in lines if line.startswith("│")]
    assert all(len(line) <= 60 for line in panel)
    printed = " ".join(panel).replace("│", " ").split()
    assert [w for w in printed if w.startswith("w") and w[1:].isdigit()] == words
