"""Atomic file and folder writes: an interrupted run never leaves a half-written file that looks complete.

A file is written to a temporary name beside it and renamed over it. A folder (a dataset, an adapter) is built in a
temporary folder and swapped in: with one atomic exchange where the system has it (Linux's renameat2), so the
target is never missing; elsewhere by two renames, which a kill can interrupt, and `recover_strays` then puts the
old folder back. Files and folders get the permissions the user's umask gives, not the temp files' private ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STRAY = re.compile(r"\.(?P<name>.+?)(\.[A-Za-z0-9_]{8}\.tmp|\.old)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a plain new file gets under the process's umask (mkstemp's temp files are 0600 instead)."""
    return 0o666 & ~_umask()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path, error: type[Exception]) -> dict[str, Any]:
    """A JSON object booktune wrote, or `error` in one line naming the file when it is missing or unreadable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: missing; rerun the command that writes it") from None
    except (OSError, ValueError) as e:
        raise error(f"{path}: unreadable ({type(e).__name__}); it is booktune's own record, so rerun the command "
                    "that wrote it") from None
    if not isinstance(data, dict):
        raise error(f"{path}: not a JSON object; rerun the command that wrote it")
    return data


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path` whole, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(tmp, path)


def swap_in(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`, replacing what is there; the old content is deleted afterwards."""
    if not path.exists():
        os.replace(new, path)
    elif _exchange(new, path):  # `new` now holds the old content
        shutil.rmtree(new, ignore_errors=True)
    else:
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(new, path)  # a kill before this line leaves `path` missing: recover_strays restores it
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 with RENAME_EXCHANGE); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def stray_of(name: str) -> str | None:
    """The entry a temp or swap-out name belongs to (`.adapter.old` -> 'adapter'), or None for other names."""
    m = _STRAY.fullmatch(name)
    return m.group("name") if m else None


def recover_strays(folder: Path, owned: set[str]) -> list[str]:
    """Clean up after a kill inside an atomic write or swap of one of `owned`: a half-written temp is deleted, and a
    folder swapped out but not yet replaced is put back. Returns what it did, one line per entry."""
    done = []
    for entry in sorted(folder.iterdir()):
        name = stray_of(entry.name)
        if name is None or name not in owned:
            continue
        if entry.name.endswith(".old") and not (folder / name).exists():
            os.replace(entry, folder / name)
            done.append(f"restored {folder / name} from an interrupted swap")
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        done.append(f"removed {entry}, left by an interrupted write")
    return done
