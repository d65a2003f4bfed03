"""The prepare stage's output: cleaned text, conversations (HF dataset + JSONL) and stats.

DATA/
  text/<book>.txt          cleaned prose, one paragraph per line
  notes/<book>.notes.txt   footnote texts moved out of the prose (only for books that have some)
  train.jsonl, eval.jsonl  one conversation per line: id, book, title, author, lead_in, passage, task ('continue' or
                           'answer'), question (the answer task's), passage_id, messages
  questions.jsonl          the model question writer's cache: questions and scores by passage hash and writer
  dataset/                 the same as a `datasets.DatasetDict` (train / eval), for `load_from_disk`
  dataset_info.json        the JSONL files as LLaMA-Factory datasets (`--dataset_dir DATA --dataset booktune_train`)
  axolotl.yaml             the JSONL files as an Axolotl `datasets:` section (type chat_template)
  stats.json               counts and token lengths; written last, so its presence marks a complete DATA folder
  .booktune-manifest.json  what booktune wrote here (outputs.py): only those entries are ever replaced
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from booktune.dataset.chunk import Words
from booktune.dataset.format import make_record
from booktune.dataset.split import chapter_word_starts, split_book
from booktune.outputs import Layout, OutputDir

DATA_LAYOUT = Layout("data", ("text", "notes", "train.jsonl", "eval.jsonl", "dataset", "dataset_info.json",
                             "axolotl.yaml", "questions.jsonl", "stats.json"), "stats.json")
# LLaMA-Factory reads OpenAI-style messages as its sharegpt format with these tags (its data/README.md).
LLAMA_FACTORY_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                      "system_tag": "system"}


@dataclass
class BookRows:
    slug: str
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    words: int
    gap_words: int
    split_by: str = "paragraphs"


def book_slug(path: Path, taken: set[str]) -> str:
    """A file-safe, unique name for a book."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("_") or "book"
    base, n = slug, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def is_named(path: Path, names: list[str] | tuple[str, ...]) -> bool:
    """True when `path` is named in `names` by file name or stem (as `--eval-books` takes them)."""
    return any(n in (path.name, path.stem) for n in names)


def book_rows(book: Any, slug: str, *, chunk_words: int, overlap_words: int, eval_fraction: float,
              system_prompt: str, user_prompt: str, hold_out: bool = False) -> BookRows:
    """Chunk and format one book into train and eval conversations (all eval when `hold_out`)."""
    words = Words.from_text(book.text)
    starts = chapter_word_starts(book.text, [c.start for c in getattr(book, "chapters", [])])
    split = split_book(words, eval_fraction=eval_fraction, target=chunk_words, overlap=overlap_words,
                       chapter_starts=starts, hold_out=hold_out)
    author = book.author or "the author"
    fmt = {"title": book.title, "author": author, "system_prompt": system_prompt, "user_prompt": user_prompt}
    train = [make_record(book=slug, index=i, lead_in=c.lead_in, passage=c.passage, **fmt)
             for i, c in enumerate(split.train)]
    held = [make_record(book=slug, index=len(train) + i, lead_in=c.lead_in, passage=c.passage, **fmt)
            for i, c in enumerate(split.eval)]
    return BookRows(slug, train, held, len(words), split.gap_words, split.by)


def write_texts(out: OutputDir, books: list[Any], slugs: list[str]) -> None:
    with out.folder("text") as tmp:
        for book, slug in zip(books, slugs):
            (tmp / f"{slug}.txt").write_text(book.text.rstrip() + "\n", encoding="utf-8")
    with out.folder("notes") as tmp:
        for book, slug in zip(books, slugs):
            if book.notes:
                (tmp / f"{slug}.notes.txt").write_text("\n".join(book.notes) + "\n", encoding="utf-8")


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_dataset(out: OutputDir, train: list[dict[str, Any]], held: list[dict[str, Any]]) -> None:
    """The conversations as a `datasets.DatasetDict`, plus the JSONL view."""
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()  # a sub-second write; its bars would only clutter the stats table

    out.write_text("train.jsonl", jsonl(train))
    out.write_text("eval.jsonl", jsonl(held))
    columns = ["id", "book", "title", "author", "lead_in", "passage", "task", "question", "passage_id", "messages"]
    splits = {name: Dataset.from_list(rows) if rows else Dataset.from_dict({c: [] for c in columns})
              for name, rows in (("train", train), ("eval", held))}
    with out.folder("dataset") as tmp:
        DatasetDict(splits).save_to_disk(str(tmp))
    write_interop(out, ("train", "eval") if held else ("train",))


def write_interop(out: OutputDir, splits: tuple[str, ...]) -> None:
    """The same conversations for other trainers: a LLaMA-Factory dataset_info.json and an Axolotl datasets snippet,
    each naming the JSONL `splits` written (an empty eval split is left out)."""
    entries = {f"booktune_{split}": {"file_name": f"{split}.jsonl", "formatting": "sharegpt",
                                     "columns": {"messages": "messages"}, "tags": LLAMA_FACTORY_TAGS}
               for split in splits}
    out.write_json("dataset_info.json", entries)
    out.write_text("axolotl.yaml", axolotl_snippet(out.path, splits))


def axolotl_snippet(data_dir: Path, splits: tuple[str, ...]) -> str:
    """Axolotl's chat_template datasets on the JSONL files: the tokenizer's own template, loss on the assistant
    turns and their end of turn, as booktune trains."""
    import yaml

    def entry(split: str) -> dict[str, Any]:
        return {"path": str(data_dir / f"{split}.jsonl"), "ds_type": "json", "split": "train",
                "type": "chat_template", "field_messages": "messages", "roles_to_train": ["assistant"],
                "train_on_eos": "turn"}

    config = {"datasets": [entry("train")]} | ({"test_datasets": [entry("eval")]} if "eval" in splits else {})
    head = ("# booktune prepare's conversations as Axolotl datasets: paste into an Axolotl config. Paths are as\n"
            "# `booktune prepare --out` named this folder, relative to where it ran.\n")
    return head + yaml.safe_dump(config, sort_keys=False)
