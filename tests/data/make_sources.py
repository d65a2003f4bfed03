"""Build the test PDFs that come from real producers, with their exact truth.

    python tests/data/make_sources.py  [--shared ../shared]

Writes each document's source under tests/data/src/ (NAME.tex, NAME.html,
NAME.fodt), its truth and notes under tests/data/pdf/, and sets the PDF when
the producer is installed (a missing one is reported and skipped):

- pdflatex (Debian: texlive-latex-base texlive-latex-recommended
  texlive-fonts-recommended): `latex_twocol.pdf`, two columns with footnotes
  at the foot of each column marked with symbols, some of them long enough to
  continue in the next column or on the next page; `latex_notes.pdf`, one
  column, long notes that break across pages, paragraphs and small-type block
  quotations that cross page turns;
- lualatex (Debian: texlive-luatex): `lualatex_twocol.pdf`, the two-column
  document again from LuaTeX (OpenType Latin Modern, its own mark glyphs and
  rules, no space character after a mark);
- weasyprint (PyPI; needs Debian's pango): `html_notes.pdf`, CSS paged media
  with `float: footnote` notes under a rule, a long one among them, and
  smaller indented block quotes that cross page turns; `html_columns.pdf`,
  three CSS columns with the notes across the page foot, set apart by space
  alone;
- soffice (Debian: libreoffice-writer-nogui hyphen-en-us fonts-liberation):
  `writer_columns.pdf` and `writer_twocol.pdf` from flat OpenDocument texts,
  three (two) page columns with each column's footnotes at its own foot, notes
  long enough to continue on the next page, smaller quotes indented on both
  sides that cross column and page turns, automatic hyphenation;
  `writer_onecol.pdf`, the same in one column, where Writer leaves a gap
  before line-end hyphens that reads as a space ('acci -').

Prose is public-domain Walden (../shared/corpus); the notes are paragraphs and
sentences of Russell's Problems of Philosophy, so no note text also appears in
the prose. Outputs are committed; tests never run this script.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from functools import partial
from pathlib import Path

from make_pdfs import walden_paragraphs

HERE = Path(__file__).resolve().parent
_PLAIN = set(" ,.;-—’?“”!:()'") | {chr(c) for c in range(ord("a"), ord("z") + 1)} \
    | {chr(c) for c in range(ord("A"), ord("Z") + 1)} | set("0123456789")


def russell_notes(shared: Path) -> tuple[list[str], list[str]]:
    """(long notes of 150-300 words, short notes of one sentence) in plain characters."""
    text = (shared / "corpus" / "russell_problems-of-philosophy.truth.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if set(p) <= _PLAIN and len(p.split()) > 60]
    long = [p for p in paras if 150 <= len(p.split()) <= 300]
    short = []
    for p in paras:
        if 150 <= len(p.split()) <= 300:
            continue  # a long note already: no note repeats another's words
        first = p.split(". ")[0] + "."
        if 12 <= len(first.split()) <= 35 and first[0].isupper():
            short.append(first)
    return long, short


def plain_walden(shared: Path) -> list[str]:
    return [p for p in walden_paragraphs(shared, 200) if set(p) <= _PLAIN]


def with_note(para: str, note: str, at: float, wrap) -> str:
    """The paragraph with `wrap(note)` glued after a word about `at` of the way in."""
    words = para.split(" ")
    k = int(at * len(words))
    while k < len(words) - 1 and not words[k].isalpha():
        k += 1
    words[k] += wrap(note)
    return " ".join(words)


# A document: ('h', title) | ('p', text, note | None) | ('q', [paragraphs]) -- note texts in reference order
def plan_twocol(walden: list[str], long: list[str], short: list[str]) -> list[tuple]:
    items: list[tuple] = [("h", "Of Houses")]
    # two notes of some 450 words: more than a column's foot holds, so they continue in the next column
    notes = iter([short[0], short[1], long[0] + " " + long[6], short[2], short[3], short[4],
                  long[1] + " " + long[7], short[5], short[6]])
    for k, p in enumerate(walden[:16]):
        if k == 8:
            items.append(("h", "Of Fields"))
        items.append(("p", p, next(notes, None) if k % 2 == 0 else None))
    return items


def plan_notes(walden: list[str], long: list[str], short: list[str]) -> list[tuple]:
    items: list[tuple] = [("h", "Of Ponds")]
    paras = walden[16:34]
    notes = iter([long[2], short[7], long[3], short[8], long[4], short[9], long[5]])
    for k, p in enumerate(paras):
        if k in (3, 11):
            items.append(("q", [walden[40 + k], walden[41 + k]]))
        items.append(("p", p, next(notes, None) if k % 2 == 1 else None))
    return items


def plan_writer(walden: list[str], long: list[str], short: list[str]) -> list[tuple]:
    items: list[tuple] = [("h", "Of Fields")]
    notes = iter([short[10], long[8] + " " + long[9] + " " + long[10], short[11], short[12],
                  long[11], short[13], long[12] + " " + long[13], short[14], short[15], short[16]])
    for k, p in enumerate(walden[60:80]):
        if k in (5, 14):
            items.append(("q", [walden[90 + k], walden[91 + k]]))
        items.append(("p", p, next(notes, None) if k % 2 == 1 else None))
    return items


def truth_and_notes(items: list[tuple]) -> tuple[str, str]:
    truth, notes = [], []
    for item in items:
        if item[0] == "q":
            truth.extend(item[1])
        else:
            truth.append(item[1])
            if item[0] == "p" and item[2]:
                notes.append(item[2])
    return "\n\n".join(truth) + "\n", "\n".join(notes) + ("\n" if notes else "")


TEX_HEAD = r"""\documentclass[%(size)s%(cols)s]{article}
%(fonts)s
\usepackage[paperwidth=%(w)s,paperheight=%(h)s,margin=0.65in,top=0.8in,bottom=0.8in]{geometry}
\setlength{\columnsep}{0.25in}
\pagestyle{myheadings}
\begin{document}
\thispagestyle{empty}
\begin{center}\Huge The Book of the Woods\end{center}
\clearpage
"""


PDFTEX_FONTS = r"""\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage{times}
\pdfinfo{/Title (The Book of the Woods) /Author (H. D. Thoreau)}"""


def tex_source(items: list[tuple], twocol: bool, lua: bool = False) -> str:
    """LaTeX source; pdfTeX in Times, or (lua=True) LuaTeX in its default Latin Modern OpenType."""
    head = TEX_HEAD % {"size": "10pt", "cols": ",twocolumn" if twocol else "", "fonts": "" if lua else PDFTEX_FONTS,
                       "w": "7in" if twocol else "5.5in", "h": "9.5in" if twocol else "8.5in"}
    out = [head]
    if twocol:  # marks * † ‡ § ¶ ‖ ** †† (pdfTeX sets ‖ as two bars, LuaTeX * as ∗, from the math font)
        out.append("\\renewcommand{\\thefootnote}{\\fnsymbol{footnote}}")
    for item in items:
        if item[0] == "h":
            out.append("\\section*{" + item[1] + "}\\markboth{The Book of the Woods}{" + item[1] + "}")
        elif item[0] == "q":
            out.append("\\begin{quotation}\\small\n" + "\n\n".join(item[1]) + "\n\\end{quotation}")
        else:
            text = item[1] if not item[2] else with_note(item[1], item[2], 0.6, lambda n: "\\footnote{" + n + "}")
            out.append(text)
    out.append(r"\end{document}")
    return "\n\n".join(out) + "\n"


HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The Book of the Woods</title>
<meta name="author" content="H. D. Thoreau">
<style>
@page { size: %(page)s; margin: 0.75in 0.6in;
  @top-center { content: string(chapter); font: 8pt "Latin Modern Roman"; text-transform: uppercase; }
  @bottom-center { content: counter(page); font: 9pt "Latin Modern Roman"; }
  @footnote { %(rule)s } }
@page :first { @top-center { content: none; } @bottom-center { content: none; } }
html { font: 10.5pt/1.3 "Latin Modern Roman"; hyphens: auto; text-align: justify; }
.cols { columns: %(cols)d; column-gap: 1.5em; }
h1 { font-size: 20pt; text-align: center; margin-top: 2in; page-break-after: always; }
h2 { font-size: 15pt; text-align: center; string-set: chapter content(); }
p { margin: 0; text-indent: 1.5em; }
h2 + p { text-indent: 0; }
blockquote { margin: 0.6em 2em; font-size: 9.5pt; }
blockquote p { text-indent: 0; margin-bottom: 0.3em; }
.fn { float: footnote; font-size: 8.5pt; text-indent: 0; }
::footnote-call { content: counter(footnote); vertical-align: super; font-size: 65%; line-height: 0; }
::footnote-marker { content: counter(footnote) ". "; }
</style></head><body>
<h1>The Book of the Woods</h1>
"""


def html_source(items: list[tuple], columns: int = 1, rule: bool = True) -> str:
    """Paged-media HTML; notes under a rule, or (rule=False) set apart by space alone."""
    sep = "border-top: 0.5pt solid black; padding-top: 4pt; margin-top: 10pt;" if rule else "margin-top: 14pt;"
    page = "5.5in 8.5in" if columns == 1 else "8.5in 11in"
    out = [HTML_HEAD.replace("%(rule)s", sep).replace("%(cols)d", str(columns)).replace("%(page)s", page),
           '<div class="cols">']
    for item in items:
        if item[0] == "h":
            out.append(f"<h2>{item[1]}</h2>")
        elif item[0] == "q":
            out.append("<blockquote>" + "".join(f"<p>{q}</p>" for q in item[1]) + "</blockquote>")
        else:
            text = item[1] if not item[2] else with_note(item[1], item[2], 0.6, lambda n: f'<span class="fn">{n}</span>')
            out.append(f"<p>{text}</p>")
    out.append("</div></body></html>")
    return "\n".join(out) + "\n"


FODT_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
 office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
<office:meta><dc:title>The Book of the Woods</dc:title><dc:creator>H. D. Thoreau</dc:creator></office:meta>
<office:font-face-decls>
 <style:font-face style:name="Liberation Serif" svg:font-family="'Liberation Serif'" style:font-family-generic="roman"/>
</office:font-face-decls>
<office:styles>
 <style:default-style style:family="paragraph">
  <style:text-properties style:font-name="Liberation Serif" fo:font-size="%(size)s" fo:language="en" fo:country="US"
   fo:hyphenate="true" fo:hyphenation-remain-char-count="3" fo:hyphenation-push-char-count="3"/>
 </style:default-style>
 <style:style style:name="Body" style:family="paragraph">
  <style:paragraph-properties fo:text-align="justify" fo:text-indent="0.2in"/>
 </style:style>
 <style:style style:name="First" style:family="paragraph" style:parent-style-name="Body">
  <style:paragraph-properties fo:text-indent="0in"/>
 </style:style>
 <style:style style:name="Quote" style:family="paragraph">
  <style:paragraph-properties fo:text-align="justify" fo:margin-left="0.25in" fo:margin-right="0.25in"
   fo:margin-top="0.03in" fo:margin-bottom="0.03in"/>
  <style:text-properties fo:font-size="8.5pt"/>
 </style:style>
 <style:style style:name="Heading" style:family="paragraph">
  <style:paragraph-properties fo:text-align="center" fo:margin-bottom="0.12in" fo:break-before="page"/>
  <style:text-properties fo:font-size="15pt"/>
 </style:style>
 <style:style style:name="Title" style:family="paragraph">
  <style:paragraph-properties fo:text-align="center" fo:margin-top="2in"/>
  <style:text-properties fo:font-size="24pt"/>
 </style:style>
 <style:style style:name="Furniture" style:family="paragraph">
  <style:paragraph-properties fo:text-align="center"/>
  <style:text-properties fo:font-size="8pt"/>
 </style:style>
 <style:style style:name="Footnote" style:family="paragraph">
  <style:paragraph-properties fo:text-align="justify"/>
  <style:text-properties fo:font-size="7.5pt"/>
 </style:style>
 <text:notes-configuration text:note-class="footnote" text:default-style-name="Footnote" style:num-format="1"
  text:start-value="0" text:footnotes-position="page" text:start-numbering-at="document"/>
</office:styles>
<office:automatic-styles>
 <style:page-layout style:name="pm1">
  <style:page-layout-properties fo:page-width="8.5in" fo:page-height="11in" fo:margin-top="0.5in"
   fo:margin-bottom="0.5in" fo:margin-left="0.7in" fo:margin-right="0.7in">
   <style:columns fo:column-count="%(columns)d" fo:column-gap="0.22in"/>
   <style:footnote-sep style:width="0.007in" style:distance-before-sep="0.04in" style:distance-after-sep="0.04in"
    style:line-style="solid" style:adjustment="left" style:rel-width="25%" style:color="#000000"/>
  </style:page-layout-properties>
  <style:header-style><style:header-footer-properties fo:min-height="0in" fo:margin-bottom="0.25in"/></style:header-style>
  <style:footer-style><style:header-footer-properties fo:min-height="0in" fo:margin-top="0.25in"/></style:footer-style>
 </style:page-layout>
</office:automatic-styles>
<office:master-styles>
 <style:master-page style:name="Standard" style:page-layout-name="pm1">
  <style:header><text:p text:style-name="Furniture">The Book of the Woods</text:p></style:header>
  <style:footer><text:p text:style-name="Furniture"><text:page-number text:select-page="current"/></text:p></style:footer>
 </style:master-page>
</office:master-styles>
<office:body><office:text>
<text:p text:style-name="Title">The Book of the Woods</text:p>
"""


def fodt_source(items: list[tuple], columns: int, size: str) -> str:
    """A flat OpenDocument text for LibreOffice Writer: page columns, footnotes, quotes."""
    out, first, count = [FODT_HEAD.replace("%(columns)d", str(columns)).replace("%(size)s", size)], True, 0

    def note(text: str) -> str:
        nonlocal count
        count += 1
        return (f'<text:note text:id="ftn{count}" text:note-class="footnote"><text:note-citation>{count}'
                f'</text:note-citation><text:note-body><text:p text:style-name="Footnote">{text}</text:p>'
                "</text:note-body></text:note>")

    for item in items:
        if item[0] == "h":
            out.append(f'<text:h text:style-name="Heading" text:outline-level="1">{item[1]}</text:h>')
            first = True
        elif item[0] == "q":
            out.extend(f'<text:p text:style-name="Quote">{q}</text:p>' for q in item[1])
            first = True
        else:
            text = item[1] if not item[2] else with_note(item[1], item[2], 0.6, note)
            out.append(f'<text:p text:style-name="{"First" if first else "Body"}">{text}</text:p>')
            first = False
    out.append("</office:text></office:body></office:document>")
    return "\n".join(out) + "\n"


def run_soffice(fodt: Path, pdf: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                        "--convert-to", "pdf", "--outdir", tmp, str(fodt)], check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(Path(tmp) / (fodt.stem + ".pdf"), pdf)


def run_latex(engine: str, tex: Path, pdf: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):  # the second pass settles marks and footnote placement
            subprocess.run([engine, "-interaction=nonstopmode", "-output-directory", tmp, str(tex)],
                           check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(Path(tmp) / (tex.stem + ".pdf"), pdf)


def run_weasyprint(html: Path, pdf: Path) -> None:
    subprocess.run(["weasyprint", str(html), str(pdf)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=HERE.parents[1] / ".." / "shared")
    args = ap.parse_args()
    walden = plain_walden(args.shared)
    long, short = russell_notes(args.shared)
    src, out = HERE / "src", HERE / "pdf"
    src.mkdir(exist_ok=True)
    docs = {
        "latex_twocol": (plan_twocol(walden, long, short), lambda it: tex_source(it, True), ".tex", "pdflatex"),
        "latex_notes": (plan_notes(walden, long, short), lambda it: tex_source(it, False), ".tex", "pdflatex"),
        "lualatex_twocol": (plan_twocol(walden, long, short), lambda it: tex_source(it, True, lua=True), ".tex",
                            "lualatex"),
        "html_notes": (plan_notes(walden, long, short), html_source, ".html", "weasyprint"),
        "html_columns": (plan_twocol(walden, long, short), lambda it: html_source(it, 3, rule=False), ".html",
                         "weasyprint"),
        "writer_columns": (plan_writer(walden, long, short), lambda it: fodt_source(it, 3, "10pt"), ".fodt",
                           "soffice"),
        "writer_twocol": (plan_writer(walden, long, short), lambda it: fodt_source(it, 2, "11pt"), ".fodt",
                          "soffice"),
        "writer_onecol": (plan_writer(walden, long, short), lambda it: fodt_source(it, 1, "11pt"), ".fodt",
                          "soffice"),
    }
    producers = {"pdflatex": partial(run_latex, "pdflatex"), "lualatex": partial(run_latex, "lualatex"),
                 "weasyprint": run_weasyprint, "soffice": run_soffice}
    for name, (items, render, ext, tool) in docs.items():
        source = src / (name + ext)
        source.write_text(render(items), encoding="utf-8")
        truth, notes = truth_and_notes(items)
        (out / f"{name}.truth.txt").write_text(truth, encoding="utf-8")
        (out / f"{name}.notes.txt").write_text(notes, encoding="utf-8")
        if not shutil.which(tool):
            print(f"{name}: {tool} not found, source and truth written, PDF left as it was")
            continue
        producers[tool](source, out / f"{name}.pdf")
        print(f"{name}.pdf: {(out / f'{name}.pdf').stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
