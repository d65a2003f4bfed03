"""Atomic export writes (exporting/files.py): whole or absent, with a plain file's mode."""

from __future__ import annotations

import os

import pytest

from booktune.exporting.errors import ExportError
from booktune.exporting.files import atomic_path


def test_an_export_file_gets_the_mode_a_plain_file_would(tmp_path):
    target = tmp_path / "model.gguf"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"GGUF")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_bytes() == b"GGUF" and (target.stat().st_mode & 0o777) == 0o666 & ~mask


def test_a_failed_export_leaves_nothing_under_its_name(tmp_path):
    target = tmp_path / "model.gguf"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ExportError, match="under-a-file: cannot write here"):
        with atomic_path(tmp_path / "a-file" / "under-a-file"):
            pass
