"""How fast the evaluation's sampled answers come: transformers' own decoding and sampling against booktune's.

Samples replies to the first --rows held-out questions of DATA with the default model (or --model), the way the
evaluation does (`inference.generate.generate_replies`: left-padded batches, seeded, stopped at the template's end
of turn; --batches sets their sizes), under these variants (--variants picks some) run alternately, --rounds times
each:

- transformers: `model.generate` with SDPA attention and transformers' sampling (temperature, top-k, top-p warpers
  over the whole vocabulary, `torch.multinomial`);
- decode attention: the same inside `inference.attention.cpu_decoding` (one-token queries as two matmuls);
- every row to the end: decode attention and `inference.sampling.TopKSampler` inside `model.generate`, which
  decodes every row until the batch's longest reply ends;
- booktune: `inference.generate.new_tokens`, what the evaluation's `generate_replies` calls (decode attention,
  `TopKSampler`, and `inference.decoding.compact_decode`, which drops each row from the batch as it ends).

On a GPU (--device cuda) the booktune variant is `new_tokens` as the evaluation runs it there, `model.generate`, every
row decoded until its batch's longest reply ends (rows leave a batch on a CPU only); --shape samples from random bf16
weights of a real shape (benchmarks/bench_models.py) with the default's tokenizer instead, which seldom reach an end
of turn, so every reply runs to --tokens, and the peak GPU memory of each variant is reported.

Prints one JSON object (seconds per round, new tokens, tokens a second, the median ratio of each round to the first
variant and batch size named) and writes it to --out. Every round draws the same seeds; the variants draw different
samples, so answers of different lengths are part of what is timed (tokens a second corrects for it).

    python benchmarks/generate_speed.py --data outputs/demo/data --rows 16 --tokens 704 --rounds 3
    python benchmarks/generate_speed.py --data outputs/demo/data --rows 31 --rounds 2 \
        --variants "every row to the end" booktune
    python benchmarks/generate_speed.py --data outputs/demo/data --rows 31 --rounds 2 --variants booktune \
        --batches 16 0
    python benchmarks/generate_speed.py --data outputs/demo/data --rounds 0 --profile 256    # traces alone
    python benchmarks/generate_speed.py --data outputs/demo/data --rows 31 --rounds 2 --device cuda \
        --variants booktune --batches 16 0 [--shape llama-8b]
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

VARIANTS = ("transformers", "decode attention", "every row to the end", "booktune")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a prepared DATA folder with answer examples")
    ap.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default model)")
    ap.add_argument("--rows", type=int, default=16, help="the first N held-out questions (the demo holds 31)")
    ap.add_argument("--tokens", type=int, default=704, help="new tokens at most (the demo's answer limit: 704)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                    help="the variants to run; ratios are to the first one named")
    ap.add_argument("--batches", nargs="+", type=int, default=[0],
                    help="prompts sampled together (0: all --rows in one batch); each size runs every variant")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--profile", type=int, default=0,
                    help="first trace one batch of this many new tokens under each variant: its top operators")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (decode attention is for a CPU only)")
    ap.add_argument("--shape", default=None, help="random weights of this shape, with --model's tokenizer")
    ap.add_argument("--out", type=Path, default=Path("generate_speed.json"))
    a = ap.parse_args()
    import torch

    from booktune.model import load_model, load_tokenizer

    tokenizer = load_tokenizer(a.model)
    if a.shape:
        sys.path.insert(0, str(HERE))
        from bench_models import random_model

        model = random_model(a.shape, tokenizer, a.device)
    else:
        model = load_model(a.model, device=a.device, dtype=torch.bfloat16).eval()
    prompts = questions(a.data, a.rows)
    run = sampler(model, tokenizer, prompts, a)
    run("booktune", tokens=16)  # warm-up: first calls allocate
    traces = {v: trace(run, v, a.profile) for v in a.variants} if a.profile else {}
    runs = {name(v, size): (v, size) for size in a.batches for v in a.variants}
    rounds = [{key: run(*spec) for key, spec in runs.items()} for _ in range(a.rounds)]
    row = summary(rounds, a, torch.get_num_threads()) | {"traces": traces}
    print(json.dumps(row, indent=1))
    a.out.write_text(json.dumps(row) + "\n")


def questions(data: Path, rows: int) -> list[list[dict]]:
    records = [json.loads(line) for line in (data / "eval.jsonl").read_text(encoding="utf-8").splitlines()]
    picked = [r["messages"][:-1] for r in records if r.get("task") == "answer"][:rows]
    if len(picked) < rows:
        sys.exit(f"{data / 'eval.jsonl'}: {len(picked)} answer examples, fewer than --rows {rows}")
    return picked


def sampler(model, tokenizer, prompts: list[list[dict]], a: argparse.Namespace):
    """run(variant, size) -> {seconds, new tokens, replies ended at the end of turn} of the prompts in seeded
    batches of `size` (0: one batch), each built as `generate_replies` builds it; the booktune variant is
    `inference.generate.new_tokens`, what it calls."""
    import contextlib

    import torch

    from booktune.inference import generate
    from booktune.inference.attention import cpu_decoding
    from booktune.inference.generate import left_padded, new_tokens
    from booktune.template import stop_token_ids

    stops = stop_token_ids(tokenizer)

    device = next(model.parameters()).device
    cuda = device.type == "cuda"

    def one_batch(variant: str, part: list[list[dict]], tokens: int) -> torch.Tensor:
        batch, mask = left_padded(tokenizer, part, device)
        kw = {"max_new_tokens": tokens, "temperature": a.temperature, "top_p": a.top_p}
        if variant in ("booktune", "every row to the end"):
            return new_tokens(model, tokenizer, batch, mask, **kw)
        # transformers' sampling over the whole vocabulary
        return model.generate(input_ids=batch, attention_mask=mask, eos_token_id=stops,
                              pad_token_id=tokenizer.pad_token_id, do_sample=True, **kw)[:, batch.shape[1]:]

    def run(variant: str, size: int = 0, tokens: int = a.tokens) -> dict:
        attention = cpu_decoding(model) if variant == "decode attention" else contextlib.nullcontext()
        whole = whole_batches() if variant == "every row to the end" else contextlib.nullcontext()
        size = size or len(prompts)
        torch.manual_seed(0)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with torch.no_grad(), attention, whole:
            started = time.perf_counter()
            rows = [row for i in range(0, len(prompts), size)
                    for row in one_batch(variant, prompts[i : i + size], tokens).tolist()]
            seconds = time.perf_counter() - started
        ended = [next((i for i, t in enumerate(row) if t in stops), None) for row in rows]
        count = sum(len(row) if end is None else end + 1 for row, end in zip(rows, ended))
        peak = {"peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)} if cuda else {}
        return {"seconds": round(seconds, 2), "new_tokens": count, "ended": sum(e is not None for e in ended)} | peak

    @contextlib.contextmanager
    def whole_batches():  # new_tokens as it is, but never through the compacting loop
        compacts = generate.compacts
        generate.compacts = lambda *args: False
        try:
            yield
        finally:
            generate.compacts = compacts

    return run


def name(variant: str, size: int) -> str:
    return variant if size == 0 else f"{variant}, {size} at a time"


def trace(run, variant: str, tokens: int, top: int = 8) -> list[dict]:
    """The `top` operators by own CPU time over one batch of `tokens` new tokens, as shares of the traced total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(variant, tokens=tokens)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in ops[:top]]


def summary(rounds: list[dict], a: argparse.Namespace, threads: int) -> dict:
    out = {"rows": a.rows, "max_new_tokens": a.tokens, "threads": threads, "rounds": rounds}
    first = name(a.variants[0], a.batches[0])
    for v in rounds[0] if rounds else ():
        out[v] = {"median_s": statistics.median(r[v]["seconds"] for r in rounds),
                  "tokens_per_s": round(sum(r[v]["new_tokens"] for r in rounds)
                                        / sum(r[v]["seconds"] for r in rounds), 1),
                  f"median_ratio_to_{first}": round(statistics.median(r[v]["seconds"] / r[first]["seconds"]
                                                                     for r in rounds), 3)}
    return out


if __name__ == "__main__":
    main()
