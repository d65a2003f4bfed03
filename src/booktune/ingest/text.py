"""Plain-text books: encoding detection, and hard-wrapped or one-per-line text rebuilt into paragraphs."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from booktune.ingest.assemble import Para, assemble, stem_title
from booktune.ingest.types import Book, BookError

# Latin-script single-byte code pages. Detectors cannot tell these apart on short English text (they differ in a
# few accented letters), so among them we prefer cp1252, by far the most common, unless it yields symbol soup.
_LATIN_PAGES = {
    "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4",
    "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "mac_roman",
    "mac_latin2", "mac_iceland", "mac_turkish", "cp437", "cp850", "cp852", "cp858", "cp775",
}
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_GUTENBERG_START = re.compile(r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_GUTENBERG_END = re.compile(r"^\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_HEADING = re.compile(
    r"^((chapter|book|part|volume|letter|act)\s+([0-9]+|[ivxlcdm]+|[a-z]+)\b.*|[IVXLCDM]+\.?|[0-9]{1,3}\.?)$", re.I
)


def read_text_file(path: Path) -> str:
    """The file decoded: BOM, else UTF-8, else the detected encoding. BookError when nothing fits."""
    data = path.read_bytes()
    if not data.strip():
        raise BookError(path, "the file is empty")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as e:
                reason = f"starts with a {enc} byte-order mark but is not valid {enc}: {e.reason}"
                raise BookError(path, reason) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        utf8_error = f"not UTF-8 (invalid byte 0x{data[e.start]:02x} at offset {e.start})"
    if b"\x00" in data:
        raise BookError(path, f"{utf8_error} and contains NUL bytes: a binary file, not text")
    enc = _detect_encoding(data)
    if enc is None:
        raise BookError(path, f"{utf8_error}, and no other text encoding fits; convert it to UTF-8")
    return data.decode(enc)


def _detect_encoding(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return None
    enc = best.encoding
    if enc in _LATIN_PAGES and enc != "cp1252":
        try:
            as_1252 = data.decode("cp1252")
        except UnicodeDecodeError:
            return enc
        if _symbol_soup(as_1252) <= _symbol_soup(str(best)):
            return "cp1252"
    return enc


def _symbol_soup(text: str) -> int:
    """Non-ASCII non-letters wedged between letters ('Za¿ó³æ'): the mark of a wrong Latin code page."""
    bad = 0
    for i in range(1, len(text) - 1):
        ch = text[i]
        if ord(ch) > 127 and text[i - 1].isalpha() and text[i + 1].isalpha():
            bad += not unicodedata.category(ch).startswith(("L", "M"))
    return bad + 10 * sum(0x80 <= ord(c) < 0xA0 for c in text)  # C1 controls never occur in real text


def strip_gutenberg(text: str) -> tuple[str, dict[str, str]]:
    """Cut a Project Gutenberg licence header and footer; return the body and its Title/Author fields."""
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if not start:
        return text, {}
    head = text[: start.start()]
    fields = dict(re.findall(r"^(Title|Author):\s*(.+?)\s*$", head, re.M))
    body = text[start.end() : end.start() if end and end.start() > start.end() else len(text)]
    return body, {k.lower(): v for k, v in fields.items()}


def join_lines(lines: list[str], vocab: set[str]) -> str:
    """Join hard-wrapped lines: a space, none after an em dash, and a line-end hyphen kept unless the
    book itself spells the joined word without one."""
    out = lines[0].strip()
    for line in lines[1:]:
        line = line.strip()
        if out.endswith(("—", "--")):
            out += line
        elif out.endswith(("-", "\u2010")) and out[-2:-1].isalpha() and line[:1].islower():
            head, tail = re.search(r"(\w+)\W$", out), re.match(r"\w+", line)
            joined = (head.group(1) + tail.group(0)).lower() if head and tail else ""
            out = out[:-1] + line if joined in vocab else out[:-1] + "-" + line
        else:
            out += " " + line
    return out


def _is_heading(line: str) -> bool:
    line = line.strip()
    return len(line) <= 60 and _HEADING.match(line) is not None


def _wrap_width(lines: list[str]) -> int | None:
    """The wrap column of hard-wrapped text, or None when lines are paragraphs (long, unwrapped lines)."""
    lengths = sorted(len(line) for line in lines if line.strip())
    if not lengths:
        return None
    p95 = lengths[int(0.95 * (len(lengths) - 1))]
    return p95 if p95 <= 100 else None


def _split_block(block: list[str], width: int | None, loose: bool) -> list[list[str]]:
    """Lines of one blank-line-separated block -> lines of each paragraph in it."""
    if width is None:
        return [[line] for line in block]  # one paragraph per line
    paras: list[list[str]] = [[]]
    indented_block = all(line[:1].isspace() for line in block)
    for line in block:
        prev = paras[-1][-1] if paras[-1] else None
        new_para = prev is not None and (
            (line[:1].isspace() and not indented_block)
            # With no blank lines in the file, a short line ending a sentence closes its paragraph.
            or (loose and len(prev) < 0.7 * width and prev.rstrip().endswith((".", "!", "?", "”", '"', "’", ":")))
            or (loose and (_is_heading(line) or _is_heading(prev)))
        )
        if new_para:
            paras.append([])
        paras[-1].append(line)
    return paras


def text_paragraphs(text: str) -> list[Para]:
    """Blank-line-separated (or one-per-line) plain text -> paragraphs; chapter-like lines open chapters."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    width = _wrap_width(lines)
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    loose = len(blocks) < max(2, len(lines) // 50)  # hardly any blank lines: paragraphs are not separated by them
    vocab = set(re.findall(r"\w+", text.lower()))
    paras: list[Para] = []
    for block in blocks:
        for para_lines in _split_block(block, width, loose) if block else []:
            joined = join_lines(para_lines, vocab)
            paras.append(Para(joined, chapter="" if _is_heading(joined) else None))
    return paras


def load_text(path: Path) -> Book:
    """A .txt book. Title and author come from a Project Gutenberg header when there is one."""
    body, fields = strip_gutenberg(read_text_file(path))
    text, chapters = assemble(text_paragraphs(body))
    if not text:
        raise BookError(path, "no text found")
    return Book(path=path, title=fields.get("title") or stem_title(path), author=fields.get("author"),
                text=text, notes=[], pages=None, format="txt", chapters=chapters)
