"""XHTML (EPUB content documents) -> paragraphs: block elements become paragraphs, inline markup is flattened.

Skipped subtrees (front/back matter, notes, note references, navigation) are decided by the caller and passed in
as element sets; this module only knows HTML structure.
"""

from __future__ import annotations

import html
import re

from lxml import etree

from booktune.ingest.assemble import Para

OPS_NS = "http://www.idpf.org/2007/ops"
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}
_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")

BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "div", "dl", "dt",
    "figcaption", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "li", "main", "ol", "p",
    "pre", "section", "summary", "td", "th", "tr", "ul",
}
HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Never prose: metadata, scripts, navigation, media, tables and figures, ruby annotations.
DROP_TAGS = {
    "head", "script", "style", "nav", "table", "figure", "svg", "math", "img", "audio", "video", "object",
    "iframe", "template", "rt", "rp", "noscript", "button", "input", "select", "textarea",
}


def _entity(m: re.Match) -> bytes:
    name = m.group(1).decode("ascii")
    if name in _XML_ENTITIES:
        return m.group(0)
    char = html.entities.html5.get(name + ";")
    return char.encode("utf-8") if char else m.group(0)


LOSS_WARNED = 0.95  # a document whose parse keeps fewer of its words than this share is reported


def parse_xhtml(data: bytes) -> etree._Element | None:
    return parse_xhtml_counted(data)[0]


def parse_xhtml_counted(data: bytes) -> tuple[etree._Element | None, int, int]:
    """(root, words kept, words in the source) for a content document, parsed as XML and recovering from errors.

    HTML named entities are resolved first, because without the (never fetched) DTD an XML parser would drop
    `&nbsp;` and friends. XML recovery can drop everything after a bad tag, so when it keeps clearly fewer words
    than the source holds, the forgiving HTML parser is tried too and the parse that keeps more words wins."""
    data = _ENTITY.sub(_entity, data)
    total = len(_TAG.sub(b" ", data).split())
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        root = None
    kept = _words(root)
    if kept < LOSS_WARNED * total:
        from lxml import html as lxml_html

        try:
            fallback = lxml_html.document_fromstring(data)
        except (etree.ParserError, ValueError):
            fallback = None
        words = _words(fallback)
        if words > kept:
            root, kept = fallback, words
    return root, kept, total


def _words(root: etree._Element | None) -> int:
    if root is None:
        return 0
    return len(" ".join(t for t in root.itertext(tag=etree.Element) if isinstance(t, str)).split())


_TAG = re.compile(rb"<(?:script|style)\b.*?</(?:script|style)\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)


def local(el: etree._Element) -> str:
    """Lower-case tag name without namespace; '' for comments and processing instructions."""
    return etree.QName(el).localname.lower() if isinstance(el.tag, str) else ""


def semantics(el: etree._Element) -> set[str]:
    """epub:type and ARIA role tokens, prefixes dropped: 'z3998:poem' -> 'poem', 'doc-endnote' -> 'endnote'."""
    raw = f"{el.get(f'{{{OPS_NS}}}type') or el.get('epub:type') or ''} {el.get('role') or ''}"
    return {tok.rsplit(":", 1)[-1].removeprefix("doc-") for tok in raw.lower().split()}


def _is_stanza(el: etree._Element) -> bool:
    marks = semantics(el) | set((el.get("class") or "").lower().split())
    return bool(marks & {"stanza", "verse-stanza", "linegroup", "lg"})


class ParagraphWalker:
    """Walk one document: every block element closes the paragraph being built; `<br>` and verse lines join with a
    space. `drop` holds elements whose subtree is left out; `anchors` maps element ids to chapter titles."""

    def __init__(self, drop: set[etree._Element], anchors: dict[str, str] | None = None) -> None:
        self.drop = drop
        self.anchors = anchors or {}
        self.paras: list[Para] = []
        self.headings: list[bool] = []
        self._buf: list[str] = []
        self._chapter: str | None = None

    def flush(self, heading: bool = False) -> None:
        text = "".join(self._buf).strip()
        self._buf = []
        if text:
            self.paras.append(Para(text, chapter=self._chapter))
            self.headings.append(heading)
            self._chapter = None

    def mark_chapter(self, title: str) -> None:
        if self._chapter is None:
            self._chapter = title

    def visit(self, el: etree._Element, flat: bool = False) -> None:
        tag = local(el)
        block = tag in BLOCK_TAGS and not flat
        if block:
            self.flush()
        if tag and el.get("id") in self.anchors:
            self.mark_chapter(self.anchors[el.get("id")])
        if tag and tag not in DROP_TAGS and el not in self.drop and "pagebreak" not in semantics(el):
            if tag == "br":
                self._buf.append(" ")
            elif not block:
                self._children(el, flat)
            else:
                self._children(el, flat=_is_stanza(el))
                parent = el.getparent()
                self.flush(heading=tag in HEADING_TAGS or (parent is not None and local(parent) == "hgroup"))
        if el.tail:
            self._buf.append(el.tail)

    def _children(self, el: etree._Element, flat: bool) -> None:
        if el.text:
            self._buf.append(el.text)
        for child in el:
            if flat and local(child) in BLOCK_TAGS:
                self._buf.append(" ")  # a verse line or nested block inside a stanza: same paragraph
            self.visit(child, flat)


def flat_text(el: etree._Element, drop: set[etree._Element]) -> str:
    """All the prose text in `el` as one line (used for note bodies)."""
    walker = ParagraphWalker(drop)
    walker._children(el, flat=True)
    walker.flush()
    return " ".join(p.text for p in walker.paras)
