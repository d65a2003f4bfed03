"""Packing without cross-talk: a packed batch's loss equals the sum of its examples' losses, one by one (CPU)."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from booktune.training import varlen
from booktune.training.backends import HF, UNSLOTH
from booktune.training.packing import (
    ALIGN,
    IGNORE,
    Batching,
    BucketCollator,
    PackedCollator,
    bucket_lengths,
    pack,
    training_batches,
)


def random_rows(n: int, lo: int, hi: int, vocab: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        length = rng.randint(lo, hi)
        ids = [rng.randrange(vocab) for _ in range(length)]
        start = rng.randint(1, length - 2)  # a prompt, then a trained answer, as build_example makes them
        rows.append({"id": f"r{i}", "input_ids": ids, "labels": [IGNORE] * start + ids[start:]})
    return rows


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval().double()


def summed_loss(model, batch: dict) -> torch.Tensor:
    """Sum of next-token NLL over labelled positions (labels shifted as transformers does)."""
    # use_cache=False as in training: a cache turns transformers' packed-sequence detection off
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits
    labels = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def one_by_one(model, rows: list[dict]) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for r in rows:
        total += summed_loss(model, {"input_ids": torch.tensor([r["input_ids"]]),
                                     "labels": torch.tensor([r["labels"]])})
    return total


@pytest.mark.parametrize("attn,flatten", [("sdpa", False), ("eager", False), ("sdpa", True),
                                          (varlen.NAME, True), (varlen.NAME, False)])
def test_packed_loss_is_the_sum_of_example_losses(model, attn, flatten):
    varlen.register()
    model.set_attn_implementation(attn)
    rows = random_rows(9, 8, 60, 97)
    packed = pack(rows, max_len=128)
    assert len(packed) < len(rows)  # several examples really share rows
    batch = PackedCollator(pad_token_id=0, flatten=flatten)(packed)
    with torch.no_grad():
        got, want = summed_loss(model, batch), one_by_one(model, rows)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_varlen_keeps_sliding_windows_inside_each_example():
    """A sliding-window model (Mistral, window 8) packed under the varlen path scores each example as alone."""
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(1)
    config = MistralConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=8,
                           max_position_embeddings=256)
    mistral = MistralForCausalLM(config).eval().double()
    varlen.register()
    rows = random_rows(6, 12, 50, 97, seed=5)
    mistral.set_attn_implementation("eager")
    with torch.no_grad():
        want = one_by_one(mistral, rows)
        mistral.set_attn_implementation(varlen.NAME)
        got = summed_loss(mistral, PackedCollator(0, flatten=True)(pack(rows, max_len=128)))
        mistral.config.sliding_window = None  # the same rows unwindowed score differently: the window was applied
        unwindowed = summed_loss(mistral, PackedCollator(0, flatten=True)(pack(rows, max_len=128)))
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    assert abs(unwindowed - want) > 1e-3


def test_packing_without_isolation_would_differ(model):
    """The test above can fail: the same packed rows with a plain causal mask give a different loss."""
    model.set_attn_implementation("sdpa")
    rows = random_rows(9, 8, 60, 97)
    batch = PackedCollator(pad_token_id=0, flatten=False)(pack(rows, max_len=128))
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])  # a mask turns packed-sequence detection off
    with torch.no_grad():
        assert abs(summed_loss(model, batch) - one_by_one(model, rows)) > 1e-3


def test_varlen_gradients_match_per_example(model):
    varlen.register()
    rows = random_rows(5, 8, 40, 97, seed=3)
    grads = {}
    for attn in ("eager", varlen.NAME):
        model.set_attn_implementation(attn)
        model.zero_grad()
        loss = summed_loss(model, PackedCollator(0, flatten=True)(pack(rows, 96)))
        loss.backward()
        grads[attn] = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad()
    model.set_attn_implementation("eager")
    one_by_one(model, rows).backward()
    reference = torch.cat([p.grad.flatten() for p in model.parameters()])
    # eager is exact to float64 rounding; PyTorch's CPU SDPA kernel rounds a little more (about 1e-8 relative)
    assert (grads["eager"] - reference).norm() / reference.norm() < 1e-12
    assert (grads[varlen.NAME] - reference).norm() / reference.norm() < 1e-6


def test_pack_keeps_every_token_and_respects_the_limit():
    rows = random_rows(200, 5, 300, 97, seed=1)
    packed = pack(rows, max_len=512)
    assert all(len(p["input_ids"]) <= 512 for p in packed)
    assert sorted(len(r["input_ids"]) for r in rows) == sorted(n for p in packed for n in p["seq_lengths"])
    trained = sum(sum(x != IGNORE for x in r["labels"][1:]) for r in rows)
    assert trained == sum(sum(x != IGNORE for x in p["labels"]) for p in packed)
    total = sum(len(r["input_ids"]) for r in rows)
    assert len(packed) <= -(-total // 512) + 2  # best-fit-decreasing wastes almost nothing here


def test_a_flattened_step_is_packed_as_one_full_row():
    """Where a step's rows are flattened into one (Unsloth, varlen), the whole step is one bin of batch x max_len
    tokens: fuller than `batch` separate rows, and each example still whole and no longer than max_len."""
    rows = random_rows(400, 550, 1100, 97, seed=2)  # the lengths of the throughput benchmark's examples
    flat, rows_mode = Batching("packed", True, "varlen"), Batching("packed", False, "sdpa")
    steps, collate = training_batches(rows, flat, max_len=2048, pad_token_id=0, batch_size=4)
    separate, _ = training_batches(rows, rows_mode, max_len=2048, pad_token_id=0, batch_size=4)
    assert flat.rows_per_step(4) == 1 and rows_mode.rows_per_step(4) == 4
    assert all(len(s["input_ids"]) <= 4 * 2048 and max(s["seq_lengths"]) <= 1100 for s in steps)
    assert all(len(r["input_ids"]) <= 2048 for r in separate)
    total = sum(len(r["input_ids"]) for r in rows)
    assert sum(len(s["input_ids"]) for s in steps) == total
    full = sorted(len(s["input_ids"]) for s in steps)[1:]  # every step but the emptiest
    fill_steps = sum(full) / (len(full) * 4 * 2048)
    fill_rows = total / (-(-len(separate) // 4) * 4 * 2048)
    assert fill_steps > 0.97 and fill_steps > fill_rows + 0.05  # about 0.98 against 0.90
    for step in steps:  # padded to a multiple of ALIGN tokens (aligned matmuls), the padding its own unlabelled example
        batch, n = collate([step]), len(step["input_ids"])
        assert batch["input_ids"].shape[1] % ALIGN == 0 and 0 <= batch["input_ids"].shape[1] - n < ALIGN
        assert (batch["labels"][0, n:] == IGNORE).all() and batch["position_ids"][0, n:].tolist()[:1] in ([], [0])
    assert {len(s["input_ids"]) % ALIGN for s in steps} != {0}  # the check above had odd lengths to pad


def test_packed_steps_are_evened_out():
    """Best-fit alone leaves its last bin part-empty (7,268 tokens here against a mean of 8,017, 7,670 to 8,192 in the
    others): a short step. Evened, every step holds close to the mean (7,685 to 8,030), and no bin is over its limit
    or loses an example."""
    rows = random_rows(560, 550, 1100, 97, seed=1)
    steps = pack(rows, max_len=2048, bin_len=8192)
    sizes = [len(s["input_ids"]) for s in steps]
    mean = sum(sizes) / len(sizes)
    assert max(sizes) <= 8192 and min(sizes) > 0.95 * mean
    assert sorted(len(r["input_ids"]) for r in rows) == sorted(n for s in steps for n in s["seq_lengths"])
    assert len(steps) <= -(-sum(sizes) // 8192) + 1  # evening keeps best-fit's number of steps


def test_pack_rejects_an_overlong_example():
    with pytest.raises(ValueError, match="r0 has 30 tokens"):
        pack([{"id": "r0", "input_ids": [1] * 30, "labels": [1] * 30}], max_len=20)


def test_bucketed_batches_pad_to_a_few_lengths():
    assert bucket_lengths(2048) == [512, 1024, 1536, 2048]
    collate = BucketCollator(pad_token_id=0, buckets=bucket_lengths(2048))
    widths = {collate(random_rows(4, lo, lo + 40, 97, seed=lo))["input_ids"].shape[1] for lo in range(50, 2000, 97)}
    assert widths <= {512, 1024, 1536, 2048}
    batch = collate(random_rows(3, 10, 20, 97))
    assert batch["input_ids"].shape[1] == 512 and batch["attention_mask"].sum() == sum(
        len(r["input_ids"]) for r in random_rows(3, 10, 20, 97))


def test_backends_fall_back_to_buckets_where_isolation_is_missing(model):
    model.set_attn_implementation("sdpa")
    assert HF.batching(model, True) == Batching("packed", False, "sdpa block-diagonal mask")
    assert HF.batching(model, False).mode == "bucketed"
    assert UNSLOTH.batching(model, True) == Batching("packed", True, "Unsloth packed attention")
    model.config.model_type = "gpt_oss"  # booktune masks its flex attention (backends/unsloth.py)
    try:
        assert UNSLOTH.batching(model, True).mode == "packed"
        model.config.model_type = "gemma2"
        assert UNSLOTH.batching(model, True).mode == "bucketed"
    finally:
        model.config.model_type = "llama"
    rows, collate = training_batches(random_rows(6, 10, 30, 97), HF.batching(model, True), max_len=64,
                                     pad_token_id=0)
    assert isinstance(collate, PackedCollator) and sum(len(r["seq_lengths"]) for r in rows) == 6


def test_the_lent_varlen_kernel_takes_torchs_varlen_call():
    """Unsloth calls its varlen kernel as torch.nn.attention.varlen.varlen_attn; booktune's stand-in
    (training/backends/unsloth.py lends it) takes that call's arguments, in the same places."""
    import inspect

    torch_varlen = pytest.importorskip("torch.nn.attention.varlen")
    theirs = inspect.signature(torch_varlen.varlen_attn).parameters
    ours = inspect.signature(varlen.flash_varlen_attn).parameters
    assert list(ours) == ["query", "key", "value", "cu_seq_q", "cu_seq_k", "max_q", "max_k", "scale", "window_size",
                          "enable_gqa"]
    assert all(ours[n].kind == theirs[n].kind and ours[n].default == theirs[n].default for n in ours)


TINY = dict(vocab_size=97, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256, pad_token_id=0)
ARCHITECTURES = {  # model type: what its tiny config needs beyond TINY (sliding windows shorter than the examples)
    "llama": {}, "mistral": {"sliding_window": 16}, "qwen2": {}, "qwen3": {}, "phi3": {}, "gemma2": {"sliding_window": 16},
    "gemma3_text": {"sliding_window": 16}, "smollm3": {},
    "qwen3_moe": {"num_experts": 4, "num_experts_per_tok": 4, "moe_intermediate_size": 32, "decoder_sparse_step": 1},
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 4},
    "gpt_oss": {"num_local_experts": 4, "num_experts_per_tok": 4, "sliding_window": 16,
                "layer_types": ["sliding_attention", "full_attention"]},
}


def tiny_model(model_type: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **TINY, **ARCHITECTURES[model_type])
    model = AutoModelForCausalLM.from_config(config).eval()  # float32: MoE kernels take no float64
    model.set_attn_implementation("eager")
    return model


def packed_and_alone(model, rows: list[dict]) -> tuple[float, float]:
    batch = PackedCollator(pad_token_id=0, flatten=False)(pack(rows, max_len=128))
    with torch.no_grad():
        return float(summed_loss(model, batch)), float(one_by_one(model, rows))


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_every_model_type_packed_under_a_mask_keeps_its_examples_apart(model_type):
    """Where the hf backend packs rows under eager attention, each example's loss is what it is alone. GPT-OSS's
    sliding window and attention sinks included: booktune hands it per-example masks (training/documents.py)."""
    model = tiny_model(model_type)
    batching = HF.batching(model, True)
    assert batching.mode == "packed", batching
    HF.isolate(model, batching)
    packed, alone = packed_and_alone(model, random_rows(6, 20, 60, 97, seed=5))
    assert abs(packed - alone) < 1e-4 * alone, (model_type, packed, alone)


def test_gpt_oss_would_mix_its_examples_without_booktunes_masks():
    """The test above can fail for GPT-OSS: transformers builds its masks without the position ids, so the same
    packed rows without booktune's hook give another loss; under sdpa or flex it is padded instead."""
    from booktune.training.backends.base import MASK_WITHOUT_POSITIONS

    assert MASK_WITHOUT_POSITIONS == ("gpt_oss",)
    model = tiny_model("gpt_oss")
    packed, alone = packed_and_alone(model, random_rows(6, 20, 60, 97, seed=5))
    assert abs(packed - alone) > 1e-4 * alone
    model.config._attn_implementation = "flex_attention"
    assert HF.batching(model, True).mode == "bucketed"


def test_gpt_oss_packed_in_training_mode_with_booktunes_masks():
    """Training runs the same masks (train mode, the Trainer's own loss over packed labels)."""
    model = tiny_model("gpt_oss").train()
    HF.isolate(model, HF.batching(model, True))
    rows = random_rows(5, 20, 60, 97, seed=7)
    batch = PackedCollator(pad_token_id=0, flatten=True)(pack(rows, max_len=128, bin_len=512))
    with torch.no_grad():
        packed, alone = float(summed_loss(model, batch)), float(one_by_one(model, rows))
    assert abs(packed - alone) < 1e-4 * alone


def test_fixed_width_steps_have_one_shape_and_the_same_examples():
    """Unsloth's GPT-OSS path pads each flattened step to its full bin: one shape every step, the padding a
    separate example with no labels."""
    rows = random_rows(12, 20, 60, 97, seed=3)
    fixed = Batching("packed", True, "flex", fixed_width=True)
    packed_rows, collate = training_batches(rows, fixed, max_len=128, pad_token_id=0, batch_size=2)
    batches = [collate([r]) for r in packed_rows]
    assert {tuple(b["input_ids"].shape) for b in batches} == {(1, 256)}
    for row, batch in zip(packed_rows, batches):
        n = len(row["input_ids"])
        assert batch["labels"][0, :n].tolist() == row["labels"] and (batch["labels"][0, n:] == IGNORE).all()
        assert batch["position_ids"][0, n:].tolist() == list(range(256 - n))  # its own example
    plain = training_batches(rows, Batching("packed", True, "varlen"), max_len=128, pad_token_id=0, batch_size=2)[1]
    assert {plain([r])["input_ids"].shape[1] for r in packed_rows} != {256}


def passage_rows(n: int, lo: int, hi: int, seed: int) -> list[dict]:
    """Rows as a prepared DATA gives them: each passage's continuation, then its answer ('passage' keys)."""
    rows = random_rows(n, lo, hi, 97, seed=seed)
    for i, r in enumerate(rows):
        r["passage"] = f"p{i // 2:03d}"
    return rows


def passages_in(packed_row: dict, owner: dict) -> list[str]:
    """The passages whose examples a packed row holds, one entry per example."""
    out, at = [], 0
    for n in packed_row["seq_lengths"]:
        out.append(owner[tuple(packed_row["input_ids"][at:at + n])])
        at += n
    return out


@pytest.mark.parametrize("flatten", [False, True])
def test_a_passages_examples_share_one_row(flatten):
    rows = passage_rows(80, 250, 600, seed=4)
    owner = {tuple(r["input_ids"]): r["passage"] for r in rows}
    batching = Batching("packed", flatten, "test")
    grouped, collate = training_batches(rows, batching, max_len=640, pad_token_id=0, group=True)
    apart, _ = training_batches(rows, batching, max_len=640, pad_token_id=0)
    where = {p: i for i, row in enumerate(grouped) for p in passages_in(row, owner)}
    for i, row in enumerate(grouped):
        held = passages_in(row, owner)
        assert all(where[p] == i for p in held) and all(held.count(p) == 2 for p in set(held))
        assert len(row["input_ids"]) <= 1280 and (len(row["input_ids"]) <= 640 or len(set(held)) == 1)
    assert sorted(n for r in grouped for n in r["seq_lengths"]) == sorted(len(r["input_ids"]) for r in rows)
    assert sum(sum(x != IGNORE for x in r["labels"]) for r in grouped) == sum(
        sum(x != IGNORE for x in r["labels"]) for r in apart)
    # Without grouping best-fit splits pairs up: the check above can fail.
    assert any(len(set(passages_in(row, owner))) != len(passages_in(row, owner)) / 2 for row in apart)
    assert max(collate([r])["input_ids"].shape[1] for r in grouped) > 640


def test_a_passage_with_many_questions_is_cut_into_rows_of_two_examples_worth():
    rows = random_rows(5, 500, 500, 97, seed=5)  # one passage, trained five times
    for r in rows:
        r["passage"] = "p"
    packed = training_batches(rows, Batching("packed", True, "varlen"), max_len=512, pad_token_id=0, group=True)[0]
    assert sorted(len(r["seq_lengths"]) for r in packed) == [1, 2, 2]
    assert all(len(r["input_ids"]) <= 1024 for r in packed)


def test_fixed_width_steps_with_passages_take_two_shapes():
    rows = passage_rows(12, 40, 120, seed=6)
    fixed = Batching("packed", True, "flex", fixed_width=True)
    packed_rows, collate = training_batches(rows, fixed, max_len=128, pad_token_id=0, group=True)
    shapes = {tuple(collate([r])["input_ids"].shape) for r in packed_rows}
    assert shapes == {(1, 128), (1, 256)}
