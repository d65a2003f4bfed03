"""The held-out loss of the default model, two ways: over the logits of every position of each padded batch (a
float32 log-softmax over the vocabulary), or through TRL's fused head on the labelled positions alone (what
`booktune run` and `booktune evaluate` score with; booktune's plain-PyTorch kernel where PyTorch has no Triton).

Scores the continuation rows of a prepared DATA folder's held-out split with the base model, and with RUN's adapter
when given, the two ways alternating --rounds times, and prints one JSON row per way (seconds of each pass, the loss
and tokens of the first) and writes them to --out.

    python benchmarks/heldout_loss.py --data outputs/demo/data --run outputs/demo/run --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE.parent / "src" / "booktune").is_dir():  # a checkout; an installed booktune works too
    sys.path.insert(0, str(HERE.parent / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("outputs/demo/data"), help="a folder made by booktune prepare")
    ap.add_argument("--run", type=Path, default=None, help="a trained run: its adapter is scored too")
    ap.add_argument("--rounds", type=int, default=2, help="passes over the two ways, alternating")
    ap.add_argument("--batch-size", type=int, default=4, help="rows a batch (booktune's eval_batch_size)")
    ap.add_argument("--out", type=Path, default=Path("heldout_loss.jsonl"))
    a = ap.parse_args()
    import torch

    from booktune.dataset.rows import heldout_rows
    from booktune.evaluation import loss
    from booktune.model import load_model, load_tokenizer

    tokenizer = load_tokenizer("default")
    rows = [r for r in heldout_rows(a.data, tokenizer, max_seq_length=1024, truncation="split")
            if r.get("task", "continue") == "continue"]
    models = {"base": load_model("default", device="cpu", dtype=torch.bfloat16)}
    if a.run:
        from peft import PeftModel

        models["tuned"] = PeftModel.from_pretrained(load_model("default", device="cpu", dtype=torch.bfloat16),
                                                    a.run / "adapter")
    fused, results = loss.fused_head, []
    for name, model in models.items():
        seen: dict[str, list] = {"logits": [], "fused": []}
        for _ in range(a.rounds):
            for way in seen:
                loss.fused_head = fused if way == "fused" else (lambda model: None)
                started = time.perf_counter()
                r = loss.heldout_loss(model, rows, pad_id=tokenizer.pad_token_id, batch_size=a.batch_size)
                seen[way].append((time.perf_counter() - started, r.loss, r.tokens))
        for way, runs in seen.items():
            results.append({"model": name, "way": way, "seconds": [round(s, 1) for s, _, _ in runs],
                            "median_s": round(statistics.median(s for s, _, _ in runs), 1), "loss": runs[0][1],
                            "tokens": runs[0][2], "rows": len(rows), "threads": torch.get_num_threads()})
            print(json.dumps(results[-1]))
    a.out.write_text("".join(json.dumps(r) + "\n" for r in results))


if __name__ == "__main__":
    main()
