"""The one base of every error a user can fix: bad input, a bad setting, a folder in the wrong state.

Each stage defines its own subclass beside the code that raises it (BookError in ingest, DataError in dataset, ...).
The CLI catches BooktuneError and prints its message as one line, never a traceback; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


class BooktuneError(ValueError):
    """Bad input or settings; the message names the file or the config field, and says what to do."""


def debugging() -> bool:
    """`booktune --debug`: booktune's own bugs show their traceback instead of a one-line note."""
    return os.environ.get("BOOKTUNE_DEBUG") == "1"


def is_bug(exc: BaseException) -> bool:
    """Whether `exc` came from booktune's own code (its innermost frame is in the package) rather than from a
    library failing on a malformed file: a bug must never be reported as a bad book. Running out of stack or
    memory is the input's size, not a bug."""
    if isinstance(exc, (RecursionError, MemoryError)):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def bug_note(exc: BaseException) -> str:
    """One line for a bug met while reading one book of many: what and where, and how to see the traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb is not None else ""
    return (f"a bug in booktune stopped this book ({type(exc).__name__}{where}); rerun with --debug for the "
            "traceback, and please report it")
