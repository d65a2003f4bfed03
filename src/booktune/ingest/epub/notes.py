"""Footnotes and endnotes in EPUB content documents: find the references and the note bodies.

Semantic markup comes first (epub:type noteref / footnote / endnote / rearnote, ARIA doc-noteref / doc-endnote,
`<aside>`). Books without it (Calibre, Pandoc, Word exports) mark a reference as a superscript link to an id; the
element holding that id is the note, and a link from the note back to the reference is a backlink, not a reference.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from lxml import etree

from booktune.ingest.clean import normalize_chars, normalize_paragraph
from booktune.ingest.epub.xhtml import flat_text, local, semantics

NOTE_TYPES = {"footnote", "endnote", "rearnote", "note"}
_INLINE = {"a", "sup", "span", "small", "em", "i", "b", "strong"}
_NOTE_BLOCKS = {"p", "li", "dd", "div", "aside", "blockquote", "section", "dt"}
_REF_CLASS = re.compile(r"note|fnref|footnote", re.I)
_REF_TEXT = re.compile(r"^\s*(\[\d{1,3}\]|[*†‡§¶]+)\s*$")
_MARK_PUNCT = re.compile(r"^[\s\[\]().,:;]*$")


@dataclass
class Notes:
    drop: set[etree._Element] = field(default_factory=set)  # note bodies and references: kept out of the prose
    texts: list[str] = field(default_factory=list)  # note texts, in order of first reference


def resolve(base: str, href: str) -> tuple[str, str]:
    """An href in document `base` -> (document name, fragment); both relative to the package folder."""
    file, _, frag = unquote(href).partition("#")
    name = posixpath.normpath(posixpath.join(posixpath.dirname(base), file)) if file else base
    return name, frag


def _is_note(el: etree._Element) -> bool:
    return local(el) == "aside" or bool(semantics(el) & NOTE_TYPES)


def _enclosing_note(el: etree._Element) -> etree._Element | None:
    while el is not None:
        if _is_note(el):
            return el
        el = el.getparent()
    return None


def _looks_like_ref(a: etree._Element) -> bool:
    parent = a.getparent()
    return (
        (parent is not None and local(parent) == "sup")
        or any(local(c) == "sup" for c in a)
        or bool(_REF_CLASS.search(a.get("class") or ""))
        or bool(_REF_TEXT.match(a.xpath("string()")))
    )


def _note_body(target: etree._Element) -> etree._Element | None:
    """The element that holds a note, given the element its reference points at."""
    note = _enclosing_note(target)
    if note is not None:
        return note
    el = target
    while el is not None and local(el) in _INLINE:
        el = el.getparent()
    return el if el is not None and local(el) in _NOTE_BLOCKS else None


def _marker(a: etree._Element) -> etree._Element:
    """The reference, or its `<sup>` when that holds nothing else ('<sup>[<a>1</a>]</sup>')."""
    parent = a.getparent()
    if parent is None or local(parent) != "sup":
        return a
    rest = (parent.text or "") + "".join(c.tail or "" for c in parent) + "".join(
        c.xpath("string()") for c in parent if c is not a
    )
    return parent if _MARK_PUNCT.match(rest) else a


def _scan(docs: dict[str, etree._Element], names: list[str], notes: Notes):
    """One pass over every element: typed note bodies, and links with their targets (reference-like or not)."""
    ids = {n: {el.get("id"): el for el in docs[n].iter() if isinstance(el.tag, str) and el.get("id")} for n in names}
    typed, links, candidates = [], [], set()
    for name in names:
        for el in docs[name].iter():
            if not isinstance(el.tag, str):
                continue
            if _is_note(el) and _enclosing_note(el.getparent()) is None:
                typed.append(el)
            sem = semantics(el)
            if "backlink" in sem:
                notes.drop.add(el)
            elif local(el) == "a" and "#" in (el.get("href") or ""):
                doc, frag = resolve(name, el.get("href"))
                links.append((el, ids.get(doc, {}).get(frag), "noteref" in sem))
                if "noteref" in sem or _looks_like_ref(el):
                    candidates.add(el)
    return typed, links, candidates


def find_notes(docs: dict[str, etree._Element], order: list[str]) -> Notes:
    """Collect note references and bodies over all documents, `order` (spine order) first."""
    notes = Notes()
    typed, links, candidates = _scan(docs, order + [n for n in docs if n not in order], notes)
    bodies: list[etree._Element] = []
    for a, target, semantic in links:
        # A link pointing at a reference is the way back from a note, not a reference.
        points_at_ref = target in candidates or (local(target) in _INLINE and candidates & set(target.iter()))
        if target is not None and points_at_ref:
            notes.drop.add(a)
            continue
        if a not in candidates or (not semantic and _enclosing_note(a) is not None):
            continue
        body = _note_body(target) if target is not None else None
        if body is None and not semantic:
            continue  # an ordinary superscript link to something that is not a note
        notes.drop.add(_marker(a))
        if body is not None and body not in bodies:
            bodies.append(body)
    bodies += [el for el in typed if el not in bodies]  # notes nobody references, in document order
    notes.drop.update(bodies)
    for body in bodies:
        text = normalize_paragraph(normalize_chars(flat_text(body, notes.drop - {body})))
        text = re.sub(r"^[.:;,)\]]+\s*", "", text)  # what is left of '1. Note' once its backlink is gone
        if text:
            notes.texts.append(text)
    return notes
