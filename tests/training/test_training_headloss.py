"""booktune's plain-PyTorch fused LM head: TRL's outputs and gradients, checked against the full logits."""

from __future__ import annotations

import pytest
import torch

from booktune.training import headloss
from booktune.training.headloss import ChunkedLogProb

OUTPUTS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


def reference(hidden, weight, bias, targets, temperature=1.0, softcap=None, scale=1.0):
    """TRL's outputs from the whole [N, V] logits, as the naive computation gives them (float32 throughout, as
    the fused head keeps its statistics)."""
    z = (hidden @ weight.t() + (0 if bias is None else bias)) * scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    logp = (z / temperature).log_softmax(-1)
    p = logp.exp()
    return (logp.gather(1, targets[:, None]).squeeze(1), -(p * logp).sum(-1), torch.log((p * p).sum(-1)),
            (z / temperature).mean(-1), logp.argmax(-1) == targets)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(headloss, "BLOCK_BYTES", 4 * 97 * 5)  # 16 rows a block (the floor): 37 rows make 3 blocks


def inputs(seed=0, n=37, h=24, v=97, bias=False):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g, dtype=torch.float32)
    weight = torch.randn(v, h, generator=g, dtype=torch.float32) * 0.5
    b = torch.randn(v, generator=g, dtype=torch.float32) if bias else None
    targets = torch.randint(0, v, (n,), generator=g)
    return hidden, weight, b, targets


@pytest.mark.parametrize("temperature, softcap, scale", [(1.0, None, 1.0), (0.7, 3.0, 1.5)])
def test_outputs_and_hidden_gradient_equal_the_full_logits(small_blocks, temperature, softcap, scale):
    hidden, weight, _, targets = inputs()
    h1, h2 = hidden.clone().requires_grad_(), hidden.clone().requires_grad_()
    out = ChunkedLogProb.apply(h1, weight, None, targets, temperature, 4096, softcap, scale, OUTPUTS)
    ref = reference(h2, weight, None, targets, temperature, softcap, scale)
    for got, want in zip(out, ref):
        assert torch.allclose(got, want, atol=1e-5) if got.dtype != torch.bool else torch.equal(got, want)
    weights = torch.rand(len(targets), dtype=torch.float32)  # a per-token weight, as DFT's loss gives
    (out[0] * weights).sum().backward()  # the eager path: the gradient was made in the forward pass
    (ref[0] * weights).sum().backward()
    assert torch.allclose(h1.grad, h2.grad, atol=1e-6)


def test_head_bias_and_entropy_gradients_by_recomputing(small_blocks):
    hidden, weight, bias, targets = inputs(bias=True)
    mine = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
    theirs = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
    logp, entropy, *_ = ChunkedLogProb.apply(*mine, targets, 0.8, 4096, 2.0, 1.2, OUTPUTS)
    ref_logp, ref_entropy, *_ = reference(*theirs, targets, 0.8, 2.0, 1.2)
    (logp.sum() + 0.3 * entropy.sum()).backward()
    (ref_logp.sum() + 0.3 * ref_entropy.sum()).backward()
    for a, b in zip(mine, theirs):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_only_the_named_outputs_and_no_labelled_token():
    hidden, weight, _, targets = inputs()
    logp, entropy, sq, mean, top1 = ChunkedLogProb.apply(hidden, weight, None, targets, 1.0, 4096, None, 1.0,
                                                         ("log_probs",))
    assert logp.shape == (37,) and entropy is None and sq is None and mean is None and top1 is None
    empty = ChunkedLogProb.apply(hidden[:0], weight, None, targets[:0], 1.0, 4096, None, 1.0, OUTPUTS)
    assert empty[0].shape == (0,)


def test_bf16_autocast_matches_the_bf16_logits_path():
    """Under autocast the projection runs in bf16, as the full-logits loss runs it: the loss agrees to float32's
    rounding of the same bf16 logits and the hidden gradient to bf16's."""
    hidden, weight, _, targets = inputs(n=300, h=64, v=5000)
    hidden, weight = hidden.bfloat16(), weight.bfloat16()
    h1, h2 = hidden.clone().requires_grad_(), hidden.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logp = ChunkedLogProb.apply(h1, weight, None, targets, 1.0, 4096, None, 1.0, ("log_probs",))[0]
        logits = h2 @ weight.t()
    assert logits.dtype == torch.bfloat16
    ref = logits.float().log_softmax(-1).gather(1, targets[:, None]).squeeze(1)
    assert torch.allclose(logp, ref, atol=1e-5)
    logp.mean().backward()
    ref.mean().backward()
    a, b = h1.grad.float(), h2.grad.float()
    assert (a - b).norm() / b.norm() < 1e-2  # bf16 keeps 8 bits: single elements near cancellation differ more


def test_installed_only_where_trl_has_no_kernel(monkeypatch):
    from trl.trainer import utils

    monkeypatch.setattr(utils, "_ChunkedLogProbFunction", None)
    assert headloss.install() and utils._ChunkedLogProbFunction is ChunkedLogProb
    own = object()
    monkeypatch.setattr(utils, "_ChunkedLogProbFunction", own)
    assert headloss.install() and utils._ChunkedLogProbFunction is own  # TRL's Triton kernel is kept
    monkeypatch.delattr(utils, "add_fused_lm_head")
    assert not headloss.install()  # a TRL without a fused head: the trainer takes transformers' loss
