"""What the reliability tests share: the CLI as a user runs it, and one finished tiny run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import TINY  # noqa: F401  (the tiny run's settings; its fixture, tiny_run_dir, is there too)

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env: dict | None = None):
    """`booktune ARGS` in this process (wide, colourless output)."""
    from booktune.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300", "NO_COLOR": "1", **(env or {})})


def one_line_error(result, *needles: str) -> str:
    """The run failed with exit code 1 and one `error:` line holding every needle; returns that line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


def booktune_process(*args, kill_at: str | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m booktune ARGS` as a real process; with `kill_at`, it gets SIGKILL at that stage boundary."""
    env = {**os.environ, "COLUMNS": "200"} | ({"BOOKTUNE_KILL_AT": kill_at} if kill_at else {})
    return subprocess.run([sys.executable, "-m", "booktune", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
