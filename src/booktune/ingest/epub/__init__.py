"""EPUB books: the spine's XHTML chapters in reading order, footnotes moved out of the prose."""

from booktune.ingest.epub.reader import load_epub

__all__ = ["load_epub"]
