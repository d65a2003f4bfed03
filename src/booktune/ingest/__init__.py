"""Books in, clean prose out: PDF, EPUB, TXT and Markdown readers behind one front door.

    paths = find_books(["books/"])
    books, skipped = load_books(paths)      # one process per book; bad books are skipped with a reason
    book = load_book("walden.epub")         # or one at a time: raises BookError with a one-line message
"""

from booktune.ingest.discover import SUPPORTED_SUFFIXES, Found, discover, find_books
from booktune.ingest.dispatch import load_book
from booktune.ingest.parallel import load_books
from booktune.ingest.types import Book, BookError, Chapter, Skipped

__all__ = ["Book", "BookError", "Chapter", "Found", "Skipped", "SUPPORTED_SUFFIXES", "discover", "find_books",
           "load_book", "load_books"]
