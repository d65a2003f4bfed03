"""The quality sweep's own pieces (dev/): its rows carry the recipe's labels, reading order, the fp32 merge a
weight soup needs, and how the plot sorts results."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "dev"


def bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_rows_are_the_recipes_rows(tiny_data_dir, tiny_model_dir):
    from booktune.dataset.rows import heldout_rows
    from booktune.model import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    rows = bench("sweep_rows").sweep_rows(tiny_data_dir, tokenizer, max_seq_length=1024)
    held = heldout_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")
    assert [(r["id"], r["input_ids"], r["labels"]) for r in rows["eval"]] == [
        (r["id"], r["input_ids"], r["labels"]) for r in held]
    assert rows["train"] and {r["book"] for r in rows["train"]} == {"thoreau_walden"}
    ids = [r["id"] for r in rows["train"]]
    assert ids == sorted(ids)  # file order: the book front to back, which the "book" order relies on


def test_book_order_interleaves_books_and_ends_at_each_tail():
    sweep = bench("lora_sweep")
    train = [{"book": "a"}] * 4 + [{"book": "b"}] * 2  # rows 0-3 of book a, rows 4-5 of book b
    order = sweep.step_order(train, 9, {"order": "book"})
    assert order[:6] == [0, 4, 1, 2, 5, 3]  # by relative position: a 0, b 0, a 1/4, a 2/4, b 1/2, a 3/4
    assert order[6:] == [0, 4, 1]  # a second epoch starts over
    shuffled = sweep.step_order(train, 6, {"seed": 1})
    assert sorted(shuffled) == list(range(6)) and shuffled != list(range(6))


def test_soup_merges_in_fp32(tiny_model_dir):
    """A bf16 merge would round most of a small LoRA delta away; the soup must average the deltas themselves."""
    from transformers import AutoModelForCausalLM

    sweep = bench("lora_sweep")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    model, _ = sweep.wrap(base, {"r": 4, "alpha": 8, "lr": 1e-3})
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(layer.lora_B["default"].weight, std=1e-4)
    want = (layer.lora_B["default"].weight @ layer.lora_A["default"].weight) * layer.scaling["default"]  # [out, in]
    merged = sweep.merged_state(model, {})
    got = merged["model.layers.0.self_attn.q_proj.weight"] - base.state_dict()[
        "model.layers.0.self_attn.q_proj.weight"].float()
    assert torch.allclose(got, want.float(), atol=1e-6, rtol=1e-3)
    rounded = (base.state_dict()["model.layers.0.self_attn.q_proj.weight"] + want.to(torch.bfloat16)).float()
    lost = (rounded - base.state_dict()["model.layers.0.self_attn.q_proj.weight"].float() - want).abs().mean()
    assert lost > 0.2 * want.abs().mean()  # what a bf16 merge would have lost: why merged_state casts first


def test_plot_split_sorts_curve_and_levers():
    plot = bench("plot_sweep")
    results = [{"base": 40.0},
               {"cfg": {"r": 16, "alpha": 32, "lr": 1e-3, "seed": 42}, "final_ppl": 32.0},
               {"cfg": {"r": 16, "alpha": 32, "lr": 1e-3, "subset": 0.5, "subset_seed": 0}, "final_ppl": 34.0},
               {"cfg": {"r": 16, "alpha": 32, "lr": 1e-3, "subset": 0.5, "subset_seed": 1}, "final_ppl": 36.0},
               {"cfg": {"r": 16, "alpha": 32, "lr": 2e-3, "soup": 4}, "final_ppl": 31.0}]
    base, curve, levers = plot.split(results)
    assert base == 40.0
    assert curve[1.0] == [pytest.approx(math.log(32.0))] and len(curve[0.5]) == 2
    assert levers == [("control, seed 42", 32.0), ("soup of 4, lr 0.002", 31.0)]
