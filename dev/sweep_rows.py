"""Token rows of a prepared DATA folder for dev/lora_sweep.py: train rows in file order (each book front to
back, with its "book"), and the held-out rows, both made by the recipe's own functions. Not part of the package.

    booktune run examples/books --out outputs/demo      # once: the demo's prepared data
    python dev/sweep_rows.py outputs/demo/data .sw/rows350.json
"""

import argparse
import json
import re
from pathlib import Path
from typing import Any


def sweep_rows(data: Path, tokenizer: Any, max_seq_length: int = 1024) -> dict[str, list[dict[str, Any]]]:
    """{"train": rows, "eval": rows} as the recipe makes them (train_rows, heldout_rows), train rows with their book."""
    from booktune.dataset.rows import heldout_rows, train_rows

    train, _ = train_rows(data, tokenizer, max_seq_length=max_seq_length, truncation="split")
    for row in train:  # ids are "<book>-<index>", then "-q<n>" for an answer, "a" / "b" for a split record's pieces
        row["book"] = re.sub(r"-\d{5}.*$", "", row["id"])
    return {"train": train, "eval": heldout_rows(data, tokenizer, max_seq_length=max_seq_length, truncation="split")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared DATA folder")
    ap.add_argument("out", type=Path, help="where to write the rows (JSON)")
    ap.add_argument("--model", default="default", help="whose tokenizer and chat template")
    ap.add_argument("--max-seq-length", type=int, default=1024)
    a = ap.parse_args()
    from booktune.model import load_tokenizer

    result = sweep_rows(a.data, load_tokenizer(a.model), a.max_seq_length)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result))
    trained = sum(sum(1 for x in r["labels"] if x != -100) for r in result["train"])
    print(f"{a.out}: {len(result['train'])} train rows ({trained:,} trained tokens), "
          f"{len(result['eval'])} held-out rows")


if __name__ == "__main__":
    main()
