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


def test_the_summary_tables_title_is_centred_over_it(monkeypatch, capsys):
    monkeypatch.setattr(console, "width", 80)
    print_summary([], {}, {}, {"adapter": "/tmp/run/adapter", "report": "/tmp/run/report.html"}, 60.0)
    lines = capsys.readouterr().out.splitlines()
    title = next(i for i, line in enumerate(lines) if line.strip() == "booktune run")
    box = lines[title + 1]
    left = len(lines[title]) - len(lines[title].lstrip())
    assert box.startswith("┌") and abs(left - (len(box) - len("booktune run")) // 2) <= 1


def test_answer_loss_and_perplexity_sit_beside_the_continuations(monkeypatch, capsys):
    monkeypatch.setattr(console, "width", 100)
    before = {"loss": 3.6508, "perplexity": 38.51, "bits_per_byte": 1.135,
              "answer": {"loss": 3.7110, "perplexity": 40.89}}
    after = {"loss": 3.4448, "perplexity": 31.34, "bits_per_byte": 1.071,
             "answer": {"loss": 3.4603, "perplexity": 31.83}}
    print_summary([], before, after, {}, 60.0)
    out = capsys.readouterr().out
    assert "38.51 -> 31.34 (-18.6%)" in out
    assert "3.7110 -> 3.4603 (-6.8%)" in out and "40.89 -> 31.83 (-22.2%)" in out
