"""Paragraph lists -> Book.text and chapter offsets, shared by the EPUB, TXT and Markdown readers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from booktune.ingest.clean import normalize_chars, normalize_paragraph
from booktune.ingest.types import Chapter


@dataclass
class Para:
    text: str
    chapter: str | None = None  # set on the paragraph that opens a chapter: the chapter's title ("" = its own text)


def assemble(paras: list[Para]) -> tuple[str, list[Chapter]]:
    """Clean each paragraph and join them one per line with blank lines between; chapters point at their heading."""
    out: list[str] = []
    chapters: list[Chapter] = []
    pos = 0
    pending: str | None = None  # a chapter mark on a paragraph that cleaned to nothing moves to the next one
    for para in paras:
        if para.chapter is not None and pending is None:
            pending = para.chapter
        text = normalize_paragraph(normalize_chars(para.text))
        if not text:
            continue
        if pending is not None:
            chapters.append(Chapter(title=normalize_paragraph(pending) or text, start=pos))
            pending = None
        out.append(text)
        pos += len(text) + 2  # "\n\n" between paragraphs
    return "\n\n".join(out), chapters


def stem_title(path: Path) -> str:
    """'thoreau_walden-1854.txt' -> 'Thoreau Walden 1854'."""
    words = re.sub(r"[_\-.]+", " ", path.stem).split()
    return " ".join(w[:1].upper() + w[1:] for w in words) or path.name
