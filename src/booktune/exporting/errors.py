"""The one error class of the export core."""

from __future__ import annotations

from booktune.errors import BooktuneError


class ExportError(BooktuneError):
    """An export that cannot be done as asked; the message is one line naming the file, field or value."""
