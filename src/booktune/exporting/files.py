"""Atomic single-file writes for exports: the file appears whole under its name, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from booktune.exporting.errors import ExportError
from booktune.fsutil import new_file_mode


@contextlib.contextmanager
def scratch_path(path: str | Path) -> Iterator[Path]:
    """A hidden temp file beside `path` (same disk, so a rename onto `path` is atomic), removed on the way out."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, new_file_mode())  # the export appears as a plain file would, not as a private temp
        os.close(fd)
    except OSError as e:
        raise ExportError(f"{path}: cannot write here: {e.strerror or e}") from None
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a scratch path that is renamed onto `path` on success and removed on any error (a full disk, an
    interrupt). A killed process leaves only the hidden `.NAME.*.tmp`, never a file under the final name that
    looks complete. OSErrors come out as one-line ExportErrors naming `path`."""
    path = Path(path)
    with scratch_path(path) as tmp:
        try:
            yield tmp
            os.replace(tmp, path)
        except OSError as e:
            raise ExportError(f"{path}: write failed: {e.strerror or e}") from None
