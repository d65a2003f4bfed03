"""EPUB books: spine order, front and back matter left out, notes moved out of the prose, metadata from the OPF."""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

from lxml import etree

from booktune.errors import is_bug
from booktune.ingest.assemble import Para, assemble, stem_title
from booktune.ingest.epub.notes import find_notes, resolve
from booktune.ingest.epub.xhtml import LOSS_WARNED, OPS_NS, ParagraphWalker, local, parse_xhtml_counted, semantics
from booktune.ingest.types import Book, BookError

# epub:type / landmark values whose content is not the author's prose.
MATTER_TYPES = {
    "cover", "titlepage", "halftitlepage", "fulltitle", "seriespage", "frontispiece", "toc", "landmarks", "loi",
    "lot", "lov", "page-list", "copyright-page", "index", "colophon", "imprint", "acknowledgments", "dedication",
    "errata", "bibliography", "endnotes", "footnotes", "rearnotes", "contributors", "other-credits", "epigraph",
    "revision-history", "preview",
}
# EPUB 2 <guide> reference types, as their EPUB 3 equivalents.
_GUIDE = {"title-page": "titlepage", "acknowledgements": "acknowledgments", "notes": "endnotes"}
_COPYRIGHT = re.compile(r"©|\bcopyright\b|\bISBN\b|all rights reserved", re.I)
_DOC_TYPES = ("application/xhtml+xml", "text/html")
_BOILERPLATE_IDS = {"pg-header", "pg-footer"}  # Project Gutenberg's licence blocks inside the first/last document


MAX_MEMBER = 64 * 2**20  # bytes; ebooklib reads every member whole, so a larger one is refused before it is read


def _check_members(path: Path) -> None:
    """Refuse an EPUB whose members would not fit in memory once unpacked (a damaged file or a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as zf:
            big = next((m for m in zf.infolist() if m.file_size > MAX_MEMBER), None)
    except (zipfile.BadZipFile, OSError):
        return  # _open reports ebooklib's own reason
    if big is not None:
        raise BookError(path, f"its member {big.filename} unpacks to {big.file_size / 2**20:,.0f} MiB, over the "
                              f"{MAX_MEMBER // 2**20} MiB booktune reads per file; the EPUB is damaged")


def _open(path: Path):
    import ebooklib.epub

    _check_members(path)
    error: Exception | None = None
    # The EPUB 3 nav first; a book whose nav lacks a toc may still read through its EPUB 2 NCX.
    for ignore_ncx in (True, False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
                return ebooklib.epub.read_epub(str(path), {"ignore_ncx": ignore_ncx})
        except Exception as e:  # ebooklib raises bare TypeError/KeyError/IndexError on broken packages
            if is_bug(e):
                raise
            error = error or e
    if not _has_spine(path):
        raise BookError(path, "EPUB has no spine (the reading order in its OPF package file)")
    reason = error.msg if isinstance(error, ebooklib.epub.EpubException) else f"{type(error).__name__}: {error}"
    raise BookError(path, f"not a readable EPUB ({reason})")


def _has_spine(path: Path) -> bool:
    """Does the OPF package have a <spine> with at least one itemref? False also when there is no OPF at all."""
    try:
        with zipfile.ZipFile(path) as zf:
            container = etree.fromstring(zf.read("META-INF/container.xml"))
            opf_name = container.xpath("string(//*[local-name()='rootfile']/@full-path)")
            opf = etree.fromstring(zf.read(opf_name))
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError, OSError):
        return True  # some other breakage; let the caller report ebooklib's own reason
    return bool(opf.xpath("//*[local-name()='spine']/*[local-name()='itemref']"))


def _metadata(book, path: Path) -> tuple[str, str | None]:
    titles = [t for t, _ in book.get_metadata("DC", "title") if t and t.strip()]
    creators = book.get_metadata("DC", "creator")
    role = "{http://www.idpf.org/2007/opf}role"
    authors = [n for n, attrs in creators if n and attrs.get(role, "aut") == "aut"] or [n for n, _ in creators if n]
    author = ", ".join(" ".join(a.split()) for a in authors) or None
    return (" ".join(titles[0].split()) if titles else stem_title(path)), author


def _documents(book, warned: list[str]) -> tuple[dict[str, etree._Element], list[str], set[str]]:
    """Parsed content documents by name, the linear spine (names, in reading order) and the nav documents' names.
    A document the parser could read only in part adds a line to `warned`, with the words kept."""
    import ebooklib.epub

    docs, navs = {}, set()
    for item in book.get_items():
        if getattr(item, "media_type", None) in _DOC_TYPES or isinstance(item, ebooklib.epub.EpubHtml):
            # item.content is the file as stored; EpubHtml.get_content() re-renders it through an HTML parser.
            raw = item.content if isinstance(item.content, bytes) else item.get_content()
            root, kept, total = parse_xhtml_counted(raw if isinstance(raw, bytes) else str(raw).encode("utf-8"))
            if kept < LOSS_WARNED * total:
                warned.append(f"{item.get_name()}: malformed XHTML; kept {kept:,} of about {total:,} words")
            if root is not None:
                docs[item.get_name()] = root
            if isinstance(item, (ebooklib.epub.EpubNav, ebooklib.epub.EpubCoverHtml)):
                navs.add(item.get_name())
    spine = []
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        name = item.get_name() if item is not None else None
        if name in docs and name not in navs and str(linear).lower() != "no" and name not in spine:
            spine.append(name)
    return docs, spine, navs


def _matter_targets(book, docs: dict[str, etree._Element], navs: set[str]) -> set[tuple[str, str]]:
    """(document, fragment) pairs that landmarks or the EPUB 2 guide mark as front/back matter ('' = whole doc)."""
    targets = set()
    for nav in navs & docs.keys():
        for landmarks in docs[nav].iter():
            if local(landmarks) == "nav" and "landmarks" in semantics(landmarks):
                for a in landmarks.iter():
                    kinds = {_GUIDE.get(k, k) for k in semantics(a)}  # EPUB 2 names turn up in landmarks too
                    if local(a) == "a" and a.get("href") and kinds & MATTER_TYPES:
                        targets.add(resolve(nav, a.get("href")))
    for ref in getattr(book, "guide", None) or []:
        kind = (ref.get("type") or "").lower()
        if _GUIDE.get(kind, kind) in MATTER_TYPES and ref.get("href"):
            targets.add(resolve("", ref["href"]))
    return targets


def _toc_anchors(book) -> dict[str, dict[str, str]]:
    """Document -> {fragment ('' = document start): chapter title}, from the nav/NCX table of contents (2 levels)."""
    anchors: dict[str, dict[str, str]] = {}

    def walk(entries, depth: int) -> None:
        for entry in entries or []:
            node, children = entry if isinstance(entry, tuple) else (entry, [])
            href, title = getattr(node, "href", ""), " ".join((getattr(node, "title", "") or "").split())
            if href and title:
                doc, frag = resolve("", href)
                anchors.setdefault(doc, {}).setdefault(frag, title)
            if depth < 2:
                walk(children, depth + 1)

    toc = book.toc
    walk(toc if isinstance(toc, list) else [toc] if toc else [], 1)  # ebooklib gives a bare Link for an empty NCX
    return anchors


def _unmarked_matter(root: etree._Element, paras: list[Para], title: str, first: bool) -> bool:
    """Front matter in a document with no epub:type at all: a link list (contents), a copyright or a title page."""
    if any(el.get(f"{{{OPS_NS}}}type") or el.get("epub:type") for el in root.iter() if isinstance(el.tag, str)):
        return False
    text = " ".join(p.text for p in paras)
    words = len(text.split())
    linked = sum(len(a.xpath("string()")) for a in root.iter() if local(a) == "a" and a.get("href"))
    return (
        (words >= 3 and linked >= 0.6 * len(text))
        or (words < 300 and _COPYRIGHT.search(text) is not None)
        or (first and words < 40 and len(title) >= 3 and title.lower() in text.lower())
    )


def _doc_paras(root, drop, anchors: dict[str, str]) -> ParagraphWalker:
    walker = ParagraphWalker(drop, {k: v for k, v in anchors.items() if k})
    if "" in anchors:
        walker.mark_chapter(anchors[""])
    body = next((el for el in root.iter() if local(el) == "body"), root)
    walker.visit(body)
    walker.flush()
    if not anchors and walker.paras:  # no table of contents entry: the first heading opens the chapter
        first = next((i for i, h in enumerate(walker.headings) if h), None)
        if first is not None:
            walker.paras[first].chapter = ""
    return walker


def load_epub(path: Path) -> Book:
    """An .epub book: chapters in spine order, front/back matter skipped, footnotes and endnotes in `notes`."""
    book = _open(path)
    warned: list[str] = []
    docs, spine, navs = _documents(book, warned)
    if not spine:
        raise BookError(path, "EPUB has no spine (no readable content documents in its reading order)")
    title, author = _metadata(book, path)
    matter = _matter_targets(book, docs, navs)
    notes = find_notes(docs, spine)
    anchors = _toc_anchors(book)
    paras: list[Para] = []
    for name in spine:
        if (name, "") in matter and len(spine) > 1:
            continue
        root = docs[name]
        skip_ids = {frag for doc, frag in matter if doc == name and frag} | _BOILERPLATE_IDS
        drop = notes.drop | {
            el for el in root.iter()
            if isinstance(el.tag, str) and (semantics(el) & MATTER_TYPES or el.get("id") in skip_ids)
        }
        walker = _doc_paras(root, drop, anchors.get(name, {}))
        # An unmarked notes document leaves nothing but its "Notes" heading once the notes are out.
        notes_page = all(walker.headings) and any(el in notes.drop for el in root.iter())
        if not notes_page and not _unmarked_matter(root, walker.paras, title, first=not paras):
            paras += walker.paras
    text, chapters = assemble(paras)
    if not text:
        raise BookError(path, "no prose found in the EPUB (every document is empty, an image, or front/back matter)")
    return Book(path=path, title=title, author=author, text=text, notes=notes.texts, pages=None, format="epub",
                chapters=chapters, warnings=warned)
