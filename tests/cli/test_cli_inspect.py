"""`booktune inspect`: page-by-page kept/removed report with reasons, one-line errors."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from booktune.cli.inspect_cmd import inspect

LAYOUTS = Path(__file__).resolve().parents[1] / "data" / "pdf"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("inspect")(inspect)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the sub-command name
    return app


def test_inspect_shows_reasons_and_summary():
    result = CliRunner().invoke(_app(), ["inspect", str(LAYOUTS / "footnotes.pdf"), "--page", "5", "--page", "2"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "page 2" in out and "page 5" in out and "page 3" not in out
    for word in ("front matter", "head", "footnote", "kept", "summary: 2 pages"):
        assert word in out


def test_inspect_bad_file_is_one_clean_line(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not a pdf at all")
    result = CliRunner().invoke(_app(), ["inspect", str(bad)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"error: {bad}: not a PDF file (no %PDF header)"]
