"""Output folders that booktune owns only in part: it replaces what it wrote there, and nothing else.

Every folder booktune writes into (DATA, RUN, an export, `booktune run`'s OUT) carries a manifest,
`.booktune-manifest.json`, naming the top-level entries booktune wrote. Opening a folder for writing:
- refuses, in one line, a folder that holds anything else, unless the user passed `--overwrite`; even then the other
  entries are left alone, and an entry booktune needs that it did not write is refused by name;
- adopts the entries of a folder written before manifests existed, when its completion marker shows booktune wrote
  it (the stage's known layout names only);
- finishes or undoes a folder swap that a kill interrupted (fsutil.recover_strays).
A name is recorded in the manifest before it is written, so a kill between the two never leaves booktune's own file
looking foreign. Book discovery skips every folder with a manifest: booktune never reads its own output as a book.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from booktune.console import console
from booktune.devices import is_main_process
from booktune.errors import BooktuneError
from booktune.fsutil import atomic_dir, atomic_write_json, atomic_write_text, recover_strays

MANIFEST = ".booktune-manifest.json"


class OutputError(BooktuneError):
    """An output folder booktune may not write into as asked; the message names it and what to do."""


@dataclass(frozen=True)
class Layout:
    """What a kind of output folder holds: its kind, the entries it may hold and the file that marks it complete."""

    kind: str
    names: tuple[str, ...]
    marker: str = ""


@dataclass
class OutputDir:
    path: Path
    layout: Layout
    owned: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, path: str | Path, layout: Layout, *, overwrite: bool = False) -> OutputDir:
        """The folder at `path`, made if missing, checked before anything in it is written."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: a file, not a folder; choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        folder = cls(path, layout, _read_manifest(path, layout))
        # rank 0 alone, which alone writes: another rank would take rank 0's temp files in flight for strays
        for line in recover_strays(path, folder.owned | {MANIFEST}) if is_main_process() else ():
            console.print(f"[yellow]{escape(line)}")
        foreign = folder.foreign()
        if foreign and not overwrite:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise OutputError(f"{path}: holds {len(foreign)} entries booktune did not write ({shown}); pass "
                              "--overwrite to write beside them (they are kept), or choose another --out")
        folder._save()
        return folder

    def foreign(self) -> list[str]:
        """Visible entries booktune did not write (hidden ones, such as .git, are never touched either)."""
        return sorted(p.name for p in self.path.iterdir() if p.name not in self.owned and not p.name.startswith("."))

    def claim(self, name: str) -> Path:
        """`name`'s path, recorded as booktune's before it is written; refused if booktune did not write what is
        there already."""
        target = self.path / name
        if name not in self.owned:
            if target.exists() or target.is_symlink():
                raise OutputError(f"{target}: in the way, and booktune did not write it; move it or choose another "
                                  "--out")
            self.owned.add(name)
            self._save()
        return target

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.claim(name), text)

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_json(self.claim(name), obj)

    @contextlib.contextmanager
    def folder(self, name: str) -> Iterator[Path]:
        """A temporary folder that replaces `name` whole when the block ends without error (fsutil.atomic_dir)."""
        with atomic_dir(self.claim(name)) as tmp:
            yield tmp

    def subfolder(self, name: str, layout: Layout, *, overwrite: bool = False) -> OutputDir:
        """An output folder of its own inside this one (`booktune run`'s data/ and run/)."""
        self.claim(name)
        return OutputDir.open(self.path / name, layout, overwrite=overwrite)

    def remove(self, name: str) -> None:
        """Delete `name` if booktune wrote it (a completion marker before its outputs are rewritten, old
        checkpoints); anything else is left alone."""
        if name not in self.owned or not is_main_process():
            return
        target = self.path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()

    def _save(self) -> None:
        if is_main_process():  # under a launcher, rank 0 alone writes, so ranks never race on the manifest
            atomic_write_json(self.path / MANIFEST, {"kind": self.layout.kind, "entries": sorted(self.owned)})


def _read_manifest(path: Path, layout: Layout) -> set[str]:
    """The entries booktune wrote in `path`: from its manifest, else adopted from a marked folder of `layout`."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return _adopted(path, layout)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        kind, entries = data["kind"], set(data["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputError(f"{manifest}: unreadable; it records what booktune wrote here, so nothing in {path} is "
                          "replaced: delete the folder yourself or choose another --out") from None
    if kind != layout.kind:
        raise OutputError(f"{path}: a booktune {kind} folder, not a {layout.kind} folder; choose another --out")
    return entries


def _adopted(path: Path, layout: Layout) -> set[str]:
    """A folder booktune wrote before it kept manifests: its marker names booktune, and its entries of the known
    layout are booktune's."""
    marker = path / layout.marker if layout.marker else None
    if marker is None or not marker.is_file():
        return set()
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(data, dict) or not ({"version", "booktune_version"} & set(data)):
        return set()
    return {name for name in layout.names if (path / name).exists()}


def is_output_folder(path: Path) -> bool:
    """Whether `path` is a folder booktune wrote (book discovery skips these)."""
    return (path / MANIFEST).is_file()


def reached(boundary: str) -> None:
    """A stage boundary of a write (e.g. 'prepare:examples'). The kill tests set BOOKTUNE_KILL_AT to one, and the
    process gets SIGKILL there: each boundary is proven to leave no folder that looks finished."""
    if os.environ.get("BOOKTUNE_KILL_AT") == boundary:
        os.kill(os.getpid(), signal.SIGKILL)
