"""The base model's measurements kept between evaluations: read back only where a fresh measurement would give the
same figures, never in place of the tuned model's, and never at the cost of the evaluation."""

from __future__ import annotations

import json
import os
import shutil

import pytest


@pytest.fixture
def cache(tmp_path, monkeypatch):
    from booktune.evaluation.basecache import BaseCache

    monkeypatch.setenv("BOOKTUNE_CACHE", str(tmp_path / "cache"))
    return BaseCache.from_config(True)


@pytest.fixture
def tiny(tiny_model_dir, tmp_path):
    """A copy of the tiny model's folder (tests touch its files), loaded, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(), \
        AutoTokenizer.from_pretrained(folder)


def forwards(model) -> list[int]:
    """A list that grows by one for every forward pass of `model`."""
    calls: list[int] = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_base_loss_is_read_back_equal_to_a_fresh_measurement(tiny, tiny_data_dir, cache):
    from booktune.dataset.rows import heldout_rows
    from booktune.evaluation.heldout import score

    _, model, tokenizer = tiny
    rows = heldout_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")
    fresh = score(model, rows, tokenizer, 4, "held-out loss (base)")  # no cache
    calls = forwards(model)
    first = score(model, rows, tokenizer, 4, "held-out loss (base)", cache)
    measured = len(calls)
    second = score(model, rows, tokenizer, 4, "held-out loss (base)", cache)
    assert measured > 0 and len(calls) == measured  # the second call ran no forward pass
    assert first == fresh and second == fresh and "answer" in second
    assert cache.hits == 1 and len(list(cache.root.glob("loss-*.json"))) == 1


def test_anything_that_changes_the_figures_changes_the_key(tiny, tiny_data_dir, cache):
    import torch

    from booktune.dataset.rows import heldout_rows
    from booktune.evaluation.basecache import BaseCache, rows_digest

    folder, model, tokenizer = tiny
    rows = heldout_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")

    def key(rows=rows, batch_size=4, kind="loss"):
        return cache.key(model, kind, {"rows": rows_digest(rows), "batch_size": batch_size})

    first = key()
    assert first == key() and first.startswith("loss-")
    assert len({first, key(rows=rows[1:]), key(batch_size=2), key(kind="replies")}) == 4
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # rewritten weights
    assert key() != first
    touched = key()
    model.to(torch.bfloat16)
    assert key() != touched
    assert BaseCache.from_config(False).key(model, "loss", {}) is None
    model.config._name_or_path = ""  # weights loaded from nowhere booktune can identify: never cached
    assert key() is None


def test_base_replies_are_read_back_and_the_tuned_ones_sampled_again(tiny_run_dir, tiny_data_dir, cache,
                                                                    monkeypatch):
    from booktune.config import EvalConfig
    from booktune.dataset import load_conversations
    from booktune.evaluation.heldout import voice
    from booktune.inference import generate
    from booktune.inference.session import load_run_model

    model, tokenizer, _ = load_run_model(tiny_run_dir, device="cpu")
    held = load_conversations(tiny_data_dir, "eval")
    real, calls = generate.generate_replies, []

    def counted(model, tokenizer, prompts, **kwargs):  # the real sampling, each batch's size recorded
        calls.append(len(prompts))
        return real(model, tokenizer, prompts, **kwargs)

    monkeypatch.setattr(generate, "generate_replies", counted)
    settings = EvalConfig(samples=2, voice_prompts=4, max_new_tokens=6, sample_batch_size=4)
    _, fresh = voice(model, tokenizer, held, settings, seed=3)  # no cache: tuned and base sampled
    _, first = voice(model, tokenizer, held, settings, seed=3, cache=cache)
    assert calls == [4, 4, 4, 4] and cache.hits == 0
    _, second = voice(model, tokenizer, held, settings, seed=3, cache=cache)
    assert calls == [4, 4, 4, 4, 4] and cache.hits == 1  # the tuned batch alone
    assert first == fresh and second == fresh
    voice(model, tokenizer, held, settings, seed=4, cache=cache)  # other draws: sampled again
    assert calls[5:] == [4, 4] and cache.hits == 1


def test_an_unreadable_entry_is_measured_again_and_replaced(tiny, tiny_data_dir, cache):
    from booktune.dataset.rows import heldout_rows
    from booktune.evaluation.heldout import score

    _, model, tokenizer = tiny
    rows = heldout_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")
    first = score(model, rows, tokenizer, 4, "held-out loss (base)", cache)
    entry = next(cache.root.glob("loss-*.json"))
    entry.write_text('{"key": "cut short')
    calls = forwards(model)
    assert score(model, rows, tokenizer, 4, "held-out loss (base)", cache) == first
    assert calls and cache.hits == 0 and json.loads(entry.read_text())["value"] == first


def test_a_cache_folder_that_cannot_be_written_costs_a_warning_not_the_evaluation(tiny, tiny_data_dir, tmp_path,
                                                                                  capsys):
    from booktune.dataset.rows import heldout_rows
    from booktune.evaluation.basecache import BaseCache
    from booktune.evaluation.heldout import score

    _, model, tokenizer = tiny
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    rows = heldout_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")
    result = score(model, rows, tokenizer, 4, "held-out loss (base)", BaseCache(blocked / "eval"))
    assert result == score(model, rows, tokenizer, 4, "held-out loss (base)")
    assert "cannot keep the base model's results" in capsys.readouterr().out


def test_evaluate_twice_reads_the_base_back_and_says_so(tiny_run_dir, tiny_data_dir, tmp_path, cache, capsys):
    import booktune

    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    settings = {"samples": 1, "voice_prompts": 2, "max_new_tokens": 4, "answer_questions": 2, "answer_tokens": 4}
    first = booktune.evaluate(run, tiny_data_dir, **settings)
    assert "kept from an earlier evaluation" not in capsys.readouterr().out
    second = booktune.evaluate(run, tiny_data_dir, **settings)
    out = capsys.readouterr().out
    assert out.count("kept from an earlier evaluation") >= 3  # held-out loss, continuations, answers
    assert second.before == first.before and second.after == first.after
    assert [s["base"] for s in second.answers["samples"]] == [s["base"] for s in first.answers["samples"]]
    third = booktune.evaluate(run, tiny_data_dir, cache_base=False, **settings)
    assert "kept from an earlier evaluation" not in capsys.readouterr().out and third.before == first.before


def test_a_model_switched_to_packed_row_attention_shares_the_base_entries(tiny_run_dir, tiny_data_dir, cache):
    """`run` samples the base after training, its model on booktune's packed-row attention; `evaluate` loads it
    afresh on SDPA. Their replies are the same, and so is their key."""
    from booktune.dataset import load_conversations
    from booktune.evaluation.compare import paired_replies
    from booktune.inference.session import load_run_model
    from booktune.training.varlen import use_varlen

    model, tokenizer, _ = load_run_model(tiny_run_dir, device="cpu")
    held = [r for r in load_conversations(tiny_data_dir, "eval") if r.get("task", "continue") == "continue"][:3]
    kw = {"max_new_tokens": 8, "temperature": 0.8, "top_p": 0.95, "seed": 5, "batch_size": 2}
    sdpa_base, _ = paired_replies(model, tokenizer, held, cache=cache, **kw)
    assert use_varlen(model.get_base_model()) == "sdpa"
    varlen_base, _ = paired_replies(model, tokenizer, held, **kw)  # measured, not read back
    assert varlen_base == sdpa_base
    assert paired_replies(model, tokenizer, held, cache=cache, **kw)[0] == sdpa_base and cache.hits == 1
