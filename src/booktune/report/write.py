"""Render the report as one self-contained HTML page (inline CSS, base64 PNG plots) and as Markdown."""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any

from booktune.outputs import OutputDir
from booktune.report.collect import ReportData, Table, collect
from booktune.report.plots import function_words_png, loss_png
from booktune.runfolder import RUN_LAYOUT

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;background:#fff}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:.9em}img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:1em;
overflow:auto;font-size:.85em}.sample td{width:25%;font-size:.92em;white-space:pre-wrap}
"""


def html_table(t: Table, cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header) if any(t.header) else ""
    body = "".join("<tr>" + "".join(f'<td class="{"num" if _numeric(c) else ""}">{escape(c)}</td>' for c in r)
                   + "</tr>" for r in t.rows)
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    return (f"<h2>{escape(t.title)}</h2><table class=\"{cls}\">" + (f"<thead><tr>{head}</tr></thead>" if head else "")
            + f"<tbody>{body}</tbody></table>{note}")


def _numeric(cell: str) -> bool:
    return bool(cell) and cell.replace(",", "").replace(".", "").replace("%", "").lstrip("+-").isdigit()


def html_image(png: bytes | None, alt: str) -> str:
    if not png:
        return f'<p class="note">{escape(alt)}: nothing logged</p>'
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def samples_table(samples: list[dict[str, Any]]) -> Table:
    rows = [["…" + s["lead_in"][-400:], s.get("base", ""), s.get("tuned", s.get("generated", "")), s["reference"]]
            for s in samples]
    return Table("Samples: held-out prompts", ["lead-in (end)", "base model", "tuned model", "the author"], rows,
                 "same prompts and seeded sampling for both models; the author's text is the real continuation")


def answer_samples_table(answers: dict[str, Any], n: int = 10) -> Table:
    rows = [[s["question"], s["base"], s["tuned"], s["reference"]] for s in answers.get("samples", [])[:n]]
    return Table("Samples: held-out questions", ["question", "base model", "tuned model", "the author's passage"],
                 rows, "same questions and seeded sampling for both models; the passage is the one the question was "
                       "written for")


def render_html(r: ReportData, loss: bytes | None, words: bytes | None) -> str:
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(r.title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{escape(r.title)}</h1>"]
    parts.append(html_table(r.tables["metrics"]))
    parts.append("<h2>Loss curves</h2>" + html_image(loss, "training and held-out loss"))
    if "answers" in r.tables:
        parts += [html_table(r.tables["answers"]), html_table(answer_samples_table(r.answers), "sample")]
    for key in ("voice", "profile"):
        if key in r.tables:
            parts.append(html_table(r.tables[key]))
    if words:
        parts.append(html_image(words, "function-word rates"))
    if r.samples:
        parts.append(html_table(samples_table(r.samples), "sample"))
    parts += [html_table(r.tables["data"]), html_table(r.tables["training"])]
    parts.append(f"<h2>Config</h2><pre>{escape(json.dumps(r.config, indent=2))}</pre></body></html>")
    return "\n".join(parts)


def md_table(t: Table) -> str:
    def cell(c: str) -> str:  # book text is text: its HTML must not render in a Markdown viewer
        return escape(" ".join(c.split()), quote=False).replace("|", "\\|")
    header = t.header if any(t.header) else [" "] * len(t.rows[0] if t.rows else [""])
    lines = [f"## {t.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines + ([f"\n_{t.note}_"] if t.note else []) + [""])


def render_md(r: ReportData, loss_file: str | None) -> str:
    parts = [f"# {r.title}", "", md_table(r.tables["metrics"])]
    if loss_file:
        parts.append(f"## Loss curves\n\n![training and held-out loss]({loss_file})\n")
    if "answers" in r.tables:
        parts += [md_table(r.tables["answers"]), md_table(answer_samples_table(r.answers))]
    parts += [md_table(r.tables[k]) for k in ("voice", "profile") if k in r.tables]
    if r.samples:
        parts.append(md_table(samples_table(r.samples)))
    parts += [md_table(r.tables["data"]), md_table(r.tables["training"])]
    parts.append("## Config\n\n```json\n" + json.dumps(r.config, indent=2) + "\n```\n")
    return "\n".join(parts)


def write_report(run_dir: str | Path, data_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write RUN/report.html and RUN/report.md; return their paths."""
    r = collect(run_dir, data_dir)
    run = OutputDir.open(r.run_dir, RUN_LAYOUT, overwrite=True)  # the report adds its two files, nothing else
    loss = loss_png(r.log_history)
    html = run.write_text("report.html", render_html(r, loss, function_words_png(r.voice)))
    loss_file = "loss.png" if (r.run_dir / "loss.png").is_file() else None
    md = run.write_text("report.md", render_md(r, loss_file))
    return html, md
