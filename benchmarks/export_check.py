"""booktune's exports in a real llama.cpp (the llama-cpp-python binding), compared with transformers. Run by hand.

Needs the binding built from source in the venv (about 5 minutes on 2 cores):

    pip install --no-binary llama-cpp-python llama-cpp-python==0.3.36
    python benchmarks/export_check.py --run RUN [--work /tmp/export-check] [--skip-gpt-oss]
    python benchmarks/export_check.py [--work /tmp/export-check] [--text FILE ...] [--skip-gpt-oss]
    python benchmarks/export_check.py --only-gpt-oss [--work /tmp/export-check]

--run RUN: a finished run (`booktune run` / `booktune train`), exported through booktune's own API (gguf f16 and
q8_0, lora-gguf; the base model as an f16 GGUF), scored on the run's held-out rows exactly as booktune scores them
(the eval split tokenized with the run's settings, NLL over the label positions only, pooled over all rows):
- perplexity in llama.cpp against booktune's own figure in RUN/booktune.json (heldout.after) and against transformers'
  fp32 merged model on the same rows (targets: f16 within 1 %, q8_0 within 2 %);
- greedy 64-token continuations of 3 held-out prompts (each row's tokens before its first label), f16 GGUF against
  transformers' fp32 merged model (target: identical);
- the base GGUF with the LoRA GGUF applied at load time against the merged f16 GGUF (target: perplexity within 1 %).

Without --run: the default model (SmolLM2-135M-Instruct) with a LoRA adapter whose B matrices are random (non-zero, so
the merge changes every adapted weight), scored on windows of book text (../shared/corpus/*.truth.txt when present,
else the Walden passages of tests/exporting/tiny.py) and 3 chat prompts, with the same three checks.

Both end with a 2-layer random model of gpt-oss's shape (MXFP4 experts in q8_0): logits against transformers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WINDOW = 512
PROMPTS = ["Continue the passage: The pond was still that morning, and",
           "Describe a winter evening in the woods.",
           "What does a man need to live simply?"]


def book_windows(tokenizer, files: list[Path], per_file: int) -> list[list[int]]:
    """`per_file` windows of WINDOW tokens from the middle of each text (front matter skipped)."""
    from tests.exporting.tiny import WALDEN, WALDEN_HELD_OUT

    texts = [f.read_text(encoding="utf-8") for f in files] or [(WALDEN + "\n\n" + WALDEN_HELD_OUT) * 4]
    windows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        start = len(ids) // 3
        windows += [ids[start + i * WINDOW: start + (i + 1) * WINDOW] for i in range(per_file)
                    if start + (i + 1) * WINDOW <= len(ids)]
    return windows


def nll_from_logits(logits: np.ndarray, ids: list[int]) -> float:
    """Summed negative log-likelihood of ids[1:] given the logits at positions [:-1]."""
    x = logits[:-1].astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(ids) - 1), ids[1:]].sum())


def hf_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float().numpy()


def llama_cpp(path: Path, lora: Path | None = None, n_ctx: int = WINDOW + 128):
    from llama_cpp import Llama

    kwargs = {"lora_path": str(lora)} if lora else {}
    return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=WINDOW, logits_all=True, n_threads=2,
                 verbose=False, seed=0, **kwargs)


def cpp_logits(llm, ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def perplexity(windows, logits_fn) -> float:
    total = sum(nll_from_logits(logits_fn(w), w) for w in windows)
    return math.exp(total / sum(len(w) - 1 for w in windows))


def greedy_hf(model, ids: list[int], n: int) -> list[int]:
    """Argmax decoding, n tokens, no stop (generate() would bend the logits to honour eos and min lengths)."""
    seq = list(ids)
    for _ in range(n):
        seq.append(int(np.argmax(hf_logits(model, seq)[-1])))
    return seq[len(ids):]


def greedy_cpp(llm, ids: list[int], n: int) -> list[int]:
    """Argmax decoding on llama.cpp's logits (no sampler in between), n tokens, no stop."""
    llm.reset()
    seq = list(ids)
    llm.eval(seq)
    out = []
    for _ in range(n):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(token)
        llm.eval([token])
    return out


def compare_greedy(hf, llm, prompt: list[int], n: int) -> dict:
    """Whether both decode the same n tokens; where they first differ, transformers' top-two logit margin there
    (a near-tie that any rounding may flip)."""
    want, got = greedy_hf(hf, prompt, n), greedy_cpp(llm, prompt, n)
    if want == got:
        return {"identical": True}
    first = next(i for i, (a, b) in enumerate(zip(want, got)) if a != b)
    top2 = np.sort(hf_logits(hf, prompt + want[:first])[-1])[-2:]
    return {"identical": False, "first_difference": first, "hf_top2_margin": float(top2[1] - top2[0])}


def label_nll(logits: np.ndarray, row: dict) -> tuple[float, int]:
    """Summed NLL over a row's label positions, and their count: as booktune's held-out loss (evaluation/loss.py),
    the logits at position t score labels[t + 1] wherever it is not -100."""
    targets = np.array(row["labels"][1:])
    where = np.nonzero(targets != -100)[0]
    x = logits[where].astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(where)), targets[where]].sum()), len(where)


def rows_perplexity(rows: list[dict], logits_fn) -> dict:
    """Perplexity over all rows' label positions pooled (booktune's figure: total NLL / total label tokens)."""
    total, count = 0.0, 0
    for row in rows:
        nll, n = label_nll(logits_fn(row["input_ids"]), row)
        total, count = total + nll, count + n
    return {"perplexity": math.exp(total / count), "loss": total / count, "tokens": count}


def exported_file(result, suffix: str) -> Path:
    return next(p for p in result.files if p.name.endswith(suffix))


def run_check(run_dir: Path, work: Path) -> dict:
    """A finished run, exported by booktune, in llama.cpp against booktune's own held-out figure and transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    from booktune import api
    from booktune.dataset.rows import heldout_rows
    from booktune.exporting import merge_adapter, write_gguf
    from booktune.exporting.export import base_folder
    from booktune.model import load_tokenizer
    from booktune.runfolder import read_run, run_train_config
    from booktune.template.messages import stop_token_ids

    meta = read_run(run_dir)
    t = run_train_config(run_dir, meta, "export")
    tok = load_tokenizer(t.model)
    rows = heldout_rows(meta["data_dir"], tok, max_seq_length=t.max_seq_length, truncation=t.truncation)
    if not rows:
        raise SystemExit(f"{run_dir}: no held-out rows to score")
    # booktune's own exports, through its public API (the same call as `booktune export`)
    files = {q: exported_file(api.export(run_dir, work / f"gguf-{q}", format="gguf", quant=q, overwrite=True),
                              f"-{q}.gguf") for q in ("f16", "q8_0")}
    lora = exported_file(api.export(run_dir, work / "lora-gguf", format="lora-gguf", overwrite=True), "-lora.gguf")
    base_dir = base_folder(t.model)
    files["base-f16"] = write_gguf(base_dir, work / "base-f16.gguf", quant="f16", stop_ids=stop_token_ids(tok))
    merged = merge_adapter(base_dir, run_dir / "adapter", work / "merged-fp32", dtype="fp32")
    hf = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32)
    hf.eval()
    firsts = [next(i for i, label in enumerate(r["labels"]) if label != -100) for r in rows]
    prompts = [r["input_ids"][:i] for r, i in zip(rows, firsts)][:3]
    n_ctx = max(max(len(r["input_ids"]) for r in rows), max(len(p) for p in prompts) + 64) + 16
    after = meta["heldout"]["after"]
    res = {"run": str(run_dir), "base_model": meta.get("base_model"), "rows": len(rows),
           "row_tokens": sum(len(r["input_ids"]) for r in rows),
           "booktune": {"perplexity": after["perplexity"], "loss": after["loss"], "tokens": after["tokens"],
                        "train_dtype": t.dtype},
           "hf_fp32_merged": rows_perplexity(rows, lambda ids: hf_logits(hf, ids))}
    for q in ("f16", "q8_0"):
        llm = llama_cpp(files[q], n_ctx=n_ctx)
        res[f"cpp_{q}"] = rows_perplexity(rows, lambda ids, llm=llm: cpp_logits(llm, ids))
        if q == "f16":
            res["tokenizer_agrees_f16"] = all(
                llm.tokenize(tok.decode(p).encode(), add_bos=False, special=True) == p for p in prompts)
            res["prompt_tokens"] = [len(p) for p in prompts]
            res["greedy_f16"] = [compare_greedy(hf, llm, p, 64) for p in prompts]
        llm.close()
    with_lora = llama_cpp(files["base-f16"], lora, n_ctx=n_ctx)
    res["cpp_base_f16_plus_lora"] = rows_perplexity(rows, lambda ids: cpp_logits(with_lora, ids))
    with_lora.close()
    ppl = {k: v["perplexity"] for k, v in res.items() if isinstance(v, dict) and "perplexity" in v}
    res["pct"] = {"f16_vs_booktune": 100 * (ppl["cpp_f16"] / ppl["booktune"] - 1),
                  "q8_0_vs_booktune": 100 * (ppl["cpp_q8_0"] / ppl["booktune"] - 1),
                  "f16_vs_hf": 100 * (ppl["cpp_f16"] / ppl["hf_fp32_merged"] - 1),
                  "q8_0_vs_hf": 100 * (ppl["cpp_q8_0"] / ppl["hf_fp32_merged"] - 1),
                  "hf_vs_booktune": 100 * (ppl["hf_fp32_merged"] / ppl["booktune"] - 1),
                  "lora_vs_merged_f16": 100 * (ppl["cpp_base_f16_plus_lora"] / ppl["cpp_f16"] - 1)}
    res["files"] = {k: str(v) for k, v in {**files, "lora": lora}.items()}
    return res


def default_model_check(work: Path, texts: list[Path], std: float) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from booktune.exporting import merge_adapter, write_gguf, write_lora_gguf
    from booktune.model import resolve_model
    from booktune.template.messages import render_prompt_ids, stop_token_ids
    from tests.exporting.tiny import random_adapter

    base = resolve_model("default").path
    random_adapter(base, work / "adapter", std)
    tok = AutoTokenizer.from_pretrained(base)
    stops = stop_token_ids(tok)
    # booktune's merged export (bf16, merged in fp32): the GGUF files are made from it, f16 exactly
    merged = merge_adapter(base, work / "adapter", work / "merged", stop_ids=stops)
    files = {q: write_gguf(merged, work / f"model-{q}.gguf", quant=q, stop_ids=stops) for q in ("f16", "q8_0")}
    files["base-f16"] = write_gguf(base, work / "base-f16.gguf", quant="f16", stop_ids=stops)
    lora = write_lora_gguf(work / "adapter", base, work / "adapter.gguf")
    windows = book_windows(tok, texts, per_file=3)
    samples = [tok.decode(w) for w in windows[:3]] + [tok.decode(render_prompt_ids(tok, [{"role": "user",
                                                                                      "content": PROMPTS[0]}]))]
    hf = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32)
    hf_base = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    res = {"windows": len(windows), "tokens": sum(len(w) for w in windows),
           "ppl_hf_base": perplexity(windows, lambda w: hf_logits(hf_base, w)),
           "ppl_hf_merged": perplexity(windows, lambda w: hf_logits(hf, w))}
    for q in ("f16", "q8_0"):
        llm = llama_cpp(files[q])
        res[f"ppl_cpp_{q}"] = perplexity(windows, lambda w, llm=llm: cpp_logits(llm, w))
        res[f"tokenizer_agrees_{q}"] = all(
            llm.tokenize(t.encode(), add_bos=False, special=True) == tok(t, add_special_tokens=False)["input_ids"]
            for t in samples)
        if q == "f16":
            prompts = [render_prompt_ids(tok, [{"role": "user", "content": p}]) for p in PROMPTS]
            res["greedy_f16"] = [compare_greedy(hf, llm, p, 64) for p in prompts]
        llm.close()
    with_lora = llama_cpp(files["base-f16"], lora)
    res["ppl_cpp_base_f16_plus_lora"] = perplexity(windows, lambda w: cpp_logits(with_lora, w))
    with_lora.close()
    plain = llama_cpp(files["base-f16"])
    res["ppl_cpp_base_f16"] = perplexity(windows, lambda w: cpp_logits(plain, w))
    plain.close()
    return res


def gpt_oss_check(work: Path) -> dict:
    """A 2-layer gpt-oss-shaped random model (4 experts, sinks, sliding window, yarn RoPE) in llama.cpp."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from booktune.exporting import merge_adapter, write_gguf
    from booktune.model import resolve_model
    from tests.exporting.tiny import WALDEN, build

    tok = AutoTokenizer.from_pretrained(resolve_model("default").path)
    tiny = build("gpt_oss", tok, work / "gpt-oss", steps=80)
    merged = merge_adapter(tiny.base, tiny.adapter, work / "gpt-oss" / "merged", dtype="fp32")
    hf = AutoModelForCausalLM.from_pretrained(str(merged))
    ids = tok(WALDEN)["input_ids"][:120]
    want = hf_logits(hf, ids)
    res = {"tokens": len(ids)}
    for q in ("f16", "q8_0"):
        llm = llama_cpp(write_gguf(merged, work / "gpt-oss" / f"model-{q}.gguf", quant=q))
        got = cpp_logits(llm, ids)
        llm.close()
        res[q] = {"top1": float((got.argmax(-1) == want.argmax(-1)).mean()),
                  "max_abs_diff": float(np.abs(got - want).max()),
                  "ppl_cpp": math.exp(nll_from_logits(got, ids) / (len(ids) - 1)),
                  "ppl_hf": math.exp(nll_from_logits(want, ids) / (len(ids) - 1))}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished run folder: check its own exports on its held-out rows")
    ap.add_argument("--work", type=Path, default=Path("/tmp/export-check"))
    ap.add_argument("--text", type=Path, nargs="*", help="text files to score (default: ../shared/corpus)")
    ap.add_argument("--lora-std", type=float, default=0.01, help="std of the random LoRA B values")
    ap.add_argument("--skip-gpt-oss", action="store_true")
    ap.add_argument("--only-gpt-oss", action="store_true", help="the 2-layer gpt-oss check alone")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    report: dict = {}
    if a.run is not None and not a.only_gpt_oss:
        report["run"] = run_check(a.run, a.work)
    elif not a.only_gpt_oss:
        texts = a.text if a.text is not None else sorted((ROOT.parent / "shared" / "corpus").glob("*.truth.txt"))
        d = report["default_model"] = default_model_check(a.work, texts, a.lora_std)
        d["f16_vs_hf_pct"] = 100 * (d["ppl_cpp_f16"] / d["ppl_hf_merged"] - 1)
        d["q8_0_vs_hf_pct"] = 100 * (d["ppl_cpp_q8_0"] / d["ppl_hf_merged"] - 1)
        d["lora_vs_merged_f16_pct"] = 100 * (d["ppl_cpp_base_f16_plus_lora"] / d["ppl_cpp_f16"] - 1)
    if not a.skip_gpt_oss:
        report["gpt_oss_2_layer"] = gpt_oss_check(a.work)
    report["seconds"] = round(time.time() - started)
    text = json.dumps(report, indent=2)
    (a.work / "report.json").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
