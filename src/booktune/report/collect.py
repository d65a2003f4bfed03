"""Everything the report shows, gathered from RUN/booktune.json and DATA/stats.json into plain tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booktune.fsutil import read_json
from booktune.runfolder import RUN_FILE, RunError


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class ReportData:
    run_dir: Path
    title: str
    tables: dict[str, Table] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    voice: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)  # evaluation.heldout.answers


def collect(run_dir: str | Path, data_dir: str | Path | None = None) -> ReportData:
    """The report's content; raises RunError naming RUN when it holds no finished run."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise RunError(f"{run_dir}: no {RUN_FILE} here; run `booktune run` or `booktune train` first")
    meta = read_json(run_dir / RUN_FILE, RunError)
    data_dir = Path(data_dir or meta.get("data_dir", ""))
    stats = read_json(data_dir / "stats.json", RunError) if (data_dir / "stats.json").is_file() else {}
    report = ReportData(run_dir, f"booktune report: {run_dir.resolve().name}", log_history=meta.get("log_history", []),
                        voice=meta.get("voice") or {}, samples=meta.get("samples", []), config=meta.get("config", {}),
                        answers=meta.get("answers") or {})
    report.tables["data"] = data_table(stats, data_dir)
    report.tables["training"] = training_table(meta)
    report.tables["metrics"] = metrics_table(meta.get("heldout") or {})
    if report.answers:
        report.tables["answers"] = answers_table(report.answers)
    if report.voice:
        report.tables["voice"] = voice_table(report.voice)
        report.tables["profile"] = profile_table(report.voice)
    return report


def data_table(stats: dict[str, Any], data_dir: Path) -> Table:
    rows = [[b["slug"], f"{b['words']:,}", str(b["train"]), str(b["eval"]), b.get("split_by", ""),
             f"{b.get('gap_words', 0):,}"] for b in stats.get("books", [])]
    t = stats.get("totals", {})
    if t:
        rows.append(["total", f"{t.get('words', 0):,}", str(t.get("train", 0)), str(t.get("eval", 0)), "", ""])
    tokens = stats.get("tokens", {})
    note = f"from {data_dir}" + (f"; tokens per example: p50 {tokens['p50']}, max {tokens['max']}"
                                 if "p50" in tokens else "")
    return Table("Data", ["book", "words", "train examples", "held-out examples", "held out by", "gap words"],
                 rows, note)


def training_table(meta: dict[str, Any]) -> Table:
    train, tokens = meta.get("train", {}), meta.get("tokens", {})
    rows = [["base model", str(meta.get("base_model", ""))],
            ["optimizer steps", str(train.get("steps", ""))],
            ["training examples", str(train.get("examples", ""))],
            ["trained tokens", f"{tokens.get('trained_tokens', 0):,}"],
            ["final training loss", f"{train['train_loss']:.4f}" if "train_loss" in train else ""],
            ["training time", f"{train.get('seconds', 0) / 60:.1f} min"],
            ["whole run", f"{meta['seconds'] / 60:.1f} min" if "seconds" in meta else ""]]
    return Table("Training", ["", ""], rows)


def metrics_table(heldout: dict[str, Any]) -> Table:
    b, a = heldout.get("before") or {}, heldout.get("after") or {}
    rows = []
    for task, prefix in (({}, ""), ("answer", "answer task: ")):
        tb, ta = (b, a) if not task else (b.get(task) or {}, a.get(task) or {})
        for key, label, fmt in (("loss", "loss (nats per answer token)", "{:.4f}"),
                                ("perplexity", "perplexity", "{:.2f}"),
                                ("bits_per_byte", "bits per byte of answer text", "{:.4f}")):
            if tb.get(key) is None or ta.get(key) is None:
                continue
            change = f"{100 * (ta[key] / tb[key] - 1):+.1f}%"
            rows.append([prefix + label, fmt.format(tb[key]), fmt.format(ta[key]), change])
    note = (f"{a.get('tokens', 0):,} answer tokens ({a.get('bytes') or 0:,} bytes) in {a.get('examples', 0)} held-out"
            " examples, labelled by the same masking function as training") if a else (
        "held-out loss not measured for this run (`booktune run` scores the base and the tuned model)")
    return Table("Held-out metrics, before and after training", ["metric", "base", "tuned", "change"], rows, note)


def answers_table(answers: dict[str, Any]) -> Table:
    d, w, ended, acc = answers["delta"], answers["words"], answers["ended"], answers["attribution"]
    rows = [["Burrows' Delta to the author's training text", f"{d['base']:.3f}", f"{d['tuned']:.3f}",
             f"{d['author']:.3f}"],
            ["attributed to the author asked", f"{acc['base']:.0%}", f"{acc['tuned']:.0%}", f"{acc['author']:.0%}"],
            ["words per answer", f"{w['base']:.0f}", f"{w['tuned']:.0f}", f"{w['author']:.0f}"],
            ["ended at the end-of-turn token", f"{ended['base']:.0%}", f"{ended['tuned']:.0%}", ""]]
    note = (f"{answers['questions']} held-out questions, same seeded sampling for both models; the author's column is "
            f"the held-out passage each question was written for (the floor of Delta, the ceiling of attribution). "
            f"Delta over the {answers.get('n_words', 100)} most frequent words, lower is closer. Attribution: nearest "
            f"author by cosine Delta among {', '.join(answers['attribution_authors'])}; chance "
            f"{answers['attribution_chance']:.0%}")
    return Table("Answers to held-out questions", ["measure", "base", "tuned", "the author"], rows, note)


def voice_table(voice: dict[str, Any]) -> Table:
    b, t = voice["delta_base"], voice["delta_tuned"]
    verdict = "closer to the author" if t < b else "not closer to the author"
    rows = [["Burrows' Delta to the author", f"{b:.3f}", f"{t:.3f}", f"{t - b:+.3f} ({verdict})"]]
    note = (f"{voice.get('n_words', 100)} most frequent words, z-scored over {voice.get('reference_documents', 0)} "
            f"reference documents (the author's held-out passages and every continuation); {voice.get('prompts', 0)}"
            " held-out prompts, same seeded sampling for both models; lower is closer")
    return Table("Voice", ["measure", "base", "tuned", "change"], rows, note)


def profile_table(voice: dict[str, Any]) -> Table:
    p = voice["profiles"]
    names = ("author", "base", "tuned")
    def row(label: str, get: Any, fmt: str = "{:.2f}") -> list[str]:
        return [label] + [fmt.format(get(p[n])) for n in names]
    rows = [row("words", lambda x: x["words"], "{:,}"), row("sentence length, mean", lambda x: x["sentence_mean"]),
            row("sentence length, median", lambda x: x["sentence_median"]),
            row("sentence length, sd", lambda x: x["sentence_sd"]),
            row("vocabulary richness (MATTR, 100 words)", lambda x: x["mattr"], "{:.3f}"),
            row("hapax share of distinct words", lambda x: x["hapax_ratio"], "{:.3f}")]
    rows += [row(f"{k} per 1,000 words", lambda x, k=k: x["punctuation"][k]) for k in p["author"]["punctuation"]]
    top = [w for w, _ in p["author"]["top_function_words"][:8]]
    rows += [row(f"'{w}' per 1,000 words", lambda x, w=w: x["function_words"][w]) for w in top]
    return Table("Stylometric profile", ["", "author (held out)", "base", "tuned"], rows)
