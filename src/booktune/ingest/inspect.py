"""Render `explain_pdf` reports with rich: what each page kept, what it dropped and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from booktune.ingest.pdf import PageReport

REASONS = {
    "kept": "prose lines kept",
    "footnote marker": "reference marks cut from the prose",
    "hyphen joined": "line-end hyphen removed, word re-joined",
    "hyphen kept": "line-end hyphen of a real compound, kept",
    "head": "running head or foot (repeated text set apart at the page edge)",
    "folio": "page number (its value follows the page index)",
    "footnote": "footnote text (moved to the notes)",
    "front matter": "before the body (title, copyright, contents...)",
    "back matter": "after the body (index, contents at the end...)",
    "drop cap": "large initial letter (merged into its line)",
    "note": "footnotes (or parts carried over) found at a column's foot, each with its evidence",
    "page turn joined": "a paragraph carried on across a page or column turn, with the evidence",
}
_STYLE = {"head": "magenta", "folio": "magenta", "footnote": "cyan", "front matter": "yellow",
          "back matter": "yellow", "drop cap": "green"}


def summary_counts(reports: Sequence[PageReport]) -> Counter[str]:
    """Kept lines, removed lines per reason, footnote marks cut, hyphens joined or kept."""
    counts: Counter[str] = Counter()
    for rep in reports:
        counts["kept"] += len(rep.kept)
        counts.update(reason for _, reason in rep.removed)
        counts["footnote marker"] += len(rep.markers)
        for src, out in rep.joins:
            counts["hyphen kept" if _kept_hyphen(src, out) else "hyphen joined"] += 1
        counts["note"] += len(rep.notes)
        counts["page turn joined"] += len(rep.turns)
    return +counts  # drop zero entries


def _page_table(rep: PageReport, max_kept: int) -> Table:
    table = Table(title=f"page {rep.page}", title_justify="left", show_header=True, expand=True)
    table.add_column("", width=12, no_wrap=True)
    table.add_column("line", overflow="fold")
    for text, reason in rep.removed:
        table.add_row(Text(reason, style=_STYLE.get(reason, "red")), Text(text, style="dim"))
    kept = rep.kept if max_kept <= 0 else rep.kept[:max_kept]
    for text in kept:
        table.add_row(Text("kept", style="bold"), text)
    if len(kept) < len(rep.kept):
        table.add_row("", Text(f"... {len(rep.kept) - len(kept)} more kept lines", style="dim"))
    for text, why in rep.notes:
        table.add_row(Text("note", style="cyan"), Text(f"{why}: {text}"))
    for seam, why in rep.turns:
        table.add_row(Text("page turn", style="green"), Text(f"{seam.replace('|', ' ⏎ ')} → joined: {why}"))
    for mark in rep.markers:
        table.add_row(Text("marker", style="cyan"), Text(f"footnote mark {mark!r} cut from the prose"))
    for src, out in rep.joins:
        table.add_row(Text("hyphen", style="green"), Text(f"{src.replace('|', '⏎')} → {out}"))
    return table


def render(reports: Sequence[PageReport], console: Console | None = None, max_kept: int = 0) -> None:
    """Print each page's table, then the summary counts and what each reason means."""
    console = console or Console()
    for rep in reports:
        console.print(_page_table(rep, max_kept))
    counts = summary_counts(reports)
    noun = "page" if len(reports) == 1 else "pages"
    summary = Table(title=f"summary: {len(reports)} {noun}", title_justify="left")
    summary.add_column("what")
    summary.add_column("lines", justify="right")
    summary.add_column("meaning")
    for key, n in counts.most_common():
        summary.add_row(key, str(n), REASONS.get(key, ""))
    console.print(summary)


def _kept_hyphen(src: str, out: str) -> bool:
    """A join record keeps the hyphen when the output is as long as the source minus the '|'."""
    return len(out) == len(src) - 1
