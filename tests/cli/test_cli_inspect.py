"""`booktune inspect`: page-by-page kept/removed report with reasons, one-line errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from booktune.cli import app

LAYOUTS = Path(__file__).resolve().parents[1] / "data" / "pdf"


def test_inspect_shows_reasons_and_summary():
    result = CliRunner().invoke(app, ["inspect", str(LAYOUTS / "footnotes.pdf"), "--page", "5", "--page", "2"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "page 2" in out and "page 5" in out and "page 3" not in out
    for word in ("front matter", "head", "footnote", "kept", "summary: 2 pages"):
        assert word in out


def test_inspect_shows_notes_and_page_turns_with_their_evidence(monkeypatch):
    from booktune.console import console

    # wide enough that no evidence cell wraps (the shared console keeps the width of the first COLUMNS it saw)
    monkeypatch.setattr(console, "width", 300)
    result = CliRunner().invoke(app, ["inspect", str(LAYOUTS / "latex_notes.pdf"), "--page", "3"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "continues the note from page 2: no mark, under a rule" in out
    assert "page turn" in out and "next page: same type size (9 pt)" in out
    assert "page turn joined" in out and "note " in out


def test_inspect_bad_file_is_one_clean_line(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not a pdf at all")
    result = CliRunner().invoke(app, ["inspect", str(bad)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"error: {bad}: not a PDF file (no %PDF header)"]
