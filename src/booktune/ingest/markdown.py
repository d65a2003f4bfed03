"""Markdown books: markup stripped with markdown-it (a dependency of rich), footnotes moved to notes."""

from __future__ import annotations

import html
import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from booktune.ingest.assemble import Para, assemble, stem_title
from booktune.ingest.clean import normalize_chars, normalize_paragraph
from booktune.ingest.text import read_text_file
from booktune.ingest.types import Book, BookError

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_NOTE_DEF = re.compile(r"^\s{0,3}\[\^([^\]\s]+)\]:[ \t]?(.*)$")
_NOTE_REF = re.compile(r"\[\^([^\]\s]+)\]")
_TAG = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def split_front_matter(text: str) -> tuple[str, dict]:
    """Drop a leading YAML front matter block; return the rest and its mapping ({} when absent or not YAML)."""
    m = re.match(r"\A\ufeff?---[ \t]*\n(.*?)\n(---|\.\.\.)[ \t]*(\n|\Z)", text, re.S)
    if not m:
        return text, {}
    import yaml

    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        meta = None
    return text[m.end() :], meta if isinstance(meta, dict) else {}


def extract_footnotes(text: str) -> tuple[str, list[str]]:
    """Remove `[^id]` references and `[^id]: text` definitions (outside code fences).

    Returns the text without them and the raw note texts, in order of first reference, then unreferenced ones.
    """
    lines, defs, order, current, fence = [], {}, [], None, None
    for line in text.split("\n"):
        f = _FENCE.match(line)
        if fence or f:
            if f and (fence is None or f.group(1)[0] == fence):
                fence = None if fence else f.group(1)[0]
            lines.append(line)
            continue
        m = _NOTE_DEF.match(line)
        if m:
            current = m.group(1)
            defs[current] = [m.group(2)]
        elif current is not None and (line.startswith(("  ", "\t")) or not line.strip()):
            defs[current].append(line.strip())  # an indented continuation of the definition
        else:
            current = None
            order += [r for r in _NOTE_REF.findall(line) if r not in order]
            lines.append(_NOTE_REF.sub("", line))
    labels = [r for r in order if r in defs] + [d for d in defs if d not in order]
    return "\n".join(lines), [" ".join(defs[label]).strip() for label in labels]


def _inline_text(tok: Token) -> str:
    parts = []
    for child in tok.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline" and child.content[:3].lower() == "<br":
            parts.append(" ")  # wrapped lines and verse lines join with a space
    return "".join(parts)  # images, inline HTML tags and emphasis markers are dropped


def markdown_paragraphs(text: str) -> list[tuple[str, int]]:
    """Markdown -> (paragraph text, heading level or 0). Code, tables and rules are dropped."""
    out: list[tuple[str, int]] = []
    tokens, skip = _parser().parse(text), 0
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            skip += 1
        elif tok.type == "table_close":
            skip -= 1
        elif skip:
            continue
        elif tok.type == "inline":
            prev = tokens[i - 1]
            level = int(prev.tag[1]) if prev.type == "heading_open" else 0
            out.append((_inline_text(tok), level))
        elif tok.type == "html_block":
            text = html.unescape(_TAG.sub("", tok.content))
            out += [(p, 0) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return out


def _chapter_level(levels: list[int]) -> int:
    """Chapters are the highest heading level used more than once (a lone `#` is the book's title)."""
    used = sorted(set(levels))
    repeated = [lv for lv in used if levels.count(lv) > 1]
    return repeated[0] if repeated else (used[0] if used else 0)


def _author(meta: dict) -> str | None:
    author = meta.get("author") or meta.get("authors") or meta.get("creator")
    if isinstance(author, list):
        author = ", ".join(str(a.get("name", a) if isinstance(a, dict) else a) for a in author)
    return str(author).strip() or None if author else None


def load_markdown(path: Path) -> Book:
    """A .md / .markdown book: prose without markup, headings as lines and chapters, footnotes as notes."""
    body, meta = split_front_matter(read_text_file(path))
    body, raw_notes = extract_footnotes(body)
    paras = markdown_paragraphs(body)
    level = _chapter_level([lv for _, lv in paras if lv])
    text, chapters = assemble([Para(t, chapter="" if lv and lv == level else None) for t, lv in paras])
    if not text:
        raise BookError(path, "no text found")
    notes = [normalize_paragraph(normalize_chars(" ".join(t for t, _ in markdown_paragraphs(n)))) for n in raw_notes]
    h1 = next((t.strip() for t, lv in paras if lv == 1 and t.strip()), None)
    return Book(path=path, title=str(meta.get("title") or h1 or stem_title(path)).strip(), author=_author(meta),
                text=text, notes=[n for n in notes if n], pages=None, format="md", chapters=chapters)
