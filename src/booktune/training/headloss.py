"""TRL's fused LM head on PyTorch builds without Triton: per-token log-probabilities of the labels without the
float32 logits of the whole row.

TRL 1.15's SFTTrainer computes its loss through `add_fused_lm_head`, which projects the hidden states a tile at a
time and folds each tile into log-sum-exp statistics with a Triton kernel (`trl.kernels.ChunkedLogProbFunction`).
CPU builds of PyTorch ship no Triton, so there TRL leaves that function `None`. Without it the loss falls back to
transformers' own: the logits of every position, prompt tokens included, cast to float32, a log-softmax over the
vocabulary forward and backward and a zero-filled gradient of the same size: 10 to 30 % of a CPU training step of
the default model, by the host's load (docs/benchmarks.md, "The loss without the row's logits").

`ChunkedLogProb` is the same function in plain PyTorch, with TRL's arguments and outputs, so TRL's own loss and
metrics (entropy, token accuracy) run unchanged: the labelled positions alone, a block of tokens at a time, the
projection in the autocast dtype as TRL computes it, the statistics in float32. Where only the hidden states need a
gradient (LoRA: the head is frozen), the forward pass also computes the gradient of each token's log-probability
with respect to its hidden state, while the block's probabilities are at hand, and the backward pass scales it by
the incoming gradient; where the head trains too, or a gradient reaches the entropy, the backward pass recomputes
the blocks (as TRL's kernel always does).
"""

from __future__ import annotations

from typing import Any

import torch

OPTIONAL_OUTPUTS = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1")
BLOCK_BYTES = 1 << 26  # float32 logits held at a time: 64 MiB, about 340 tokens of a 49,152-token vocabulary


def block_rows(vocab: int) -> int:
    return max(16, BLOCK_BYTES // (4 * vocab))


def _compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    device = hidden.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype


class _Head:
    """The logits of a block of tokens as TRL transforms them (scale, soft-cap, temperature), the chain rule back
    through those transforms, and the block's buffers, allocated once a call: buffers this size come fresh from
    the operating system on every allocation, and touching new pages costs as much as the arithmetic."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, temperature: float,
                 softcap: float | None, logit_scale: float, rows: int) -> None:
        self.weight = weight.to(dtype)  # [V, H]: a no-op for a head already in the compute dtype
        self.bias = None if bias is None else bias.to(dtype)
        self.dtype, self.inv_t, self.softcap, self.scale = dtype, 1 / temperature, softcap, logit_scale
        shape = (rows, weight.shape[0])
        self.y = torch.empty(shape, dtype=dtype, device=weight.device)
        self.z, self.e = (torch.empty(shape, dtype=torch.float32, device=weight.device) for _ in range(2))

    def logits(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z [n, V] float32, in a buffer the next block reuses; tanh of the soft-cap or None) for hidden [n, H]."""
        n = hidden.shape[0]
        y, z = self.y[:n], self.z[:n]
        torch.mm(hidden.to(self.dtype), self.weight.t(), out=y)
        if self.bias is not None:
            y.add_(self.bias)
        z.copy_(y)
        if self.scale != 1:
            z.mul_(self.scale)
        tanh = None
        if self.softcap is not None:
            tanh = z.div_(self.softcap).tanh_().clone()
            z.mul_(self.softcap)
        if self.inv_t != 1:
            z.mul_(self.inv_t)
        return z, tanh

    def back(self, grad_z: torch.Tensor, tanh: torch.Tensor | None) -> torch.Tensor:
        """d loss / d projection output, in the compute dtype, from d loss / d z (float32, overwritten)."""
        if self.inv_t != 1:
            grad_z.mul_(self.inv_t)
        if tanh is not None:
            grad_z.mul_(1 - tanh * tanh)
        if self.scale != 1:
            grad_z.mul_(self.scale)
        return self.y[:len(grad_z)].copy_(grad_z)


def _stats(head: _Head, z: torch.Tensor, targets: torch.Tensor, outputs: tuple[str, ...]) -> tuple:
    """(log_z [n], exp(z - max) [n, V], its row sums, log-probs [n], then each optional output or None) of one
    block. z is spent; the exponentials go to the head's second buffer."""
    top1 = z.argmax(-1) == targets if "is_top1" in outputs else None  # argmax takes the first of equal maxima
    mean = z.mean(-1) if "mean_logits" in outputs else None
    peak = z.amax(-1, keepdim=True)
    z.sub_(peak)
    e = torch.exp(z, out=head.e[:len(z)])
    total = e.sum(-1)
    log_total = total.log()
    logprobs = z.gather(1, targets[:, None]).squeeze(1) - log_total
    sq = (torch.log((e * e).sum(-1)) - 2 * log_total) if "log_sum_sq_probs" in outputs else None
    entropy = None  # log Z - sum(p z), or with z shifted: log(total) - sum(e z) / total
    if "entropy" in outputs:
        entropy = log_total - z.mul_(e).sum(-1) / total  # z is spent
    return peak.squeeze(1) + log_total, e, total, logprobs, entropy, sq, mean, top1


class ChunkedLogProb(torch.autograd.Function):
    """`trl.kernels.ChunkedLogProbFunction` without Triton. hidden [N, H], weight [V, H], bias [V] or None,
    targets [N] -> (log-probs [N], entropy, log_sum_sq_probs, mean_logits, is_top1), each optional output None
    unless named in `outputs`. `chunk_size` (TRL's vocabulary tile) is taken and unused: a block holds whole rows."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                targets: torch.Tensor, temperature: float, chunk_size: int,
                final_logit_softcapping: float | None = None, logit_scale: float = 1.0,
                outputs: tuple[str, ...] = OPTIONAL_OUTPUTS) -> tuple:
        ctx.set_materialize_grads(False)
        step = block_rows(weight.shape[0])
        head = _Head(weight, bias, _compute_dtype(hidden), temperature, final_logit_softcapping, logit_scale,
                     min(step, max(1, hidden.shape[0])))
        eager = ctx.needs_input_grad[0] and not any(ctx.needs_input_grad[1:3])  # gradient now, for hidden alone
        blocks, grads = [], []
        for start in range(0, max(hidden.shape[0], 1), step):  # once at least: no labelled token, empty outputs
            z, tanh = head.logits(hidden[start:start + step])
            log_z, e, total, *rest = _stats(head, z, targets[start:start + step], outputs)
            blocks.append((log_z, *rest))
            if eager:  # d log p(target) / dz = onehot(target) - p, p = e / total
                grad_z = e.mul_((-1 / total)[:, None]).scatter_add_(1, targets[start:start + step, None],
                                                                      e.new_ones(len(e), 1))
                grads.append((head.back(grad_z, tanh) @ head.weight).float())
        log_z, logprobs, entropy, sq, mean, top1 = (None if v[0] is None else torch.cat(v) for v in zip(*blocks))
        ctx.save_for_backward(hidden, weight, bias, targets, log_z, entropy, torch.cat(grads) if grads else None)
        ctx.args = (temperature, final_logit_softcapping, logit_scale, head.dtype)
        ctx.mark_non_differentiable(*(x for x in (sq, mean, top1) if x is not None))
        return logprobs, entropy, sq, mean, top1

    @staticmethod
    def backward(ctx: Any, grad_logprobs: torch.Tensor | None, grad_entropy: torch.Tensor | None, *_: Any) -> tuple:
        hidden, weight, bias, targets, log_z, entropy, unit = ctx.saved_tensors
        if unit is not None and grad_entropy is None:
            grad_hidden = None if grad_logprobs is None else (unit * grad_logprobs[:, None]).to(hidden.dtype)
            return grad_hidden, None, None, None, None, None, None, None, None
        return _recomputed(ctx, hidden, weight, bias, targets, log_z, entropy, grad_logprobs, grad_entropy)


def _recomputed(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                targets: torch.Tensor, log_z: torch.Tensor, entropy: torch.Tensor | None,
                grad_logprobs: torch.Tensor | None, grad_entropy: torch.Tensor | None) -> tuple:
    """The general backward: each block's logits again, their gradient, then the hidden, head and bias gradients."""
    temperature, softcap, logit_scale, dtype = ctx.args
    step = block_rows(weight.shape[0])
    head = _Head(weight, bias, dtype, temperature, softcap, logit_scale, min(step, max(1, hidden.shape[0])))
    need_h, need_w, need_b = ctx.needs_input_grad[:3]
    zeros = {"dtype": torch.float32, "device": hidden.device}
    grad_h = torch.zeros(hidden.shape, **zeros) if need_h else None
    grad_w = torch.zeros(weight.shape, **zeros) if need_w else None
    grad_b = torch.zeros(weight.shape[0], **zeros) if need_b else None
    for start in range(0, hidden.shape[0], step):
        rows = slice(start, start + step)
        z, tanh = head.logits(hidden[rows])
        log_p = z.sub_(log_z[rows, None])
        probs = torch.exp(log_p, out=head.e[:len(z)])
        grad_z = torch.zeros_like(z)
        if grad_logprobs is not None:  # d log p(target) / dz = onehot(target) - p
            g = grad_logprobs[rows, None]
            grad_z.sub_(probs * g).scatter_add_(1, targets[rows, None], g.clone())
        if grad_entropy is not None:  # d entropy / dz = -p (log p + entropy)
            grad_z.sub_(probs * (log_p + entropy[rows, None]) * grad_entropy[rows, None])
        grad_y = head.back(grad_z, tanh)
        if grad_h is not None:
            grad_h[rows] += (grad_y @ head.weight).float()
        if grad_w is not None:
            grad_w += (grad_y.t() @ hidden[rows].to(dtype)).float()
        if grad_b is not None:
            grad_b += grad_y.float().sum(0)
    out = [None if g is None else g.to(t.dtype) for g, t in ((grad_h, hidden), (grad_w, weight), (grad_b, bias))]
    return (*out, None, None, None, None, None, None)


def install() -> bool:
    """Give TRL this function where its own needs Triton and PyTorch has none. True when TRL's fused head can run
    (its own kernel or this one), False when this TRL has no fused head to fill."""
    from trl.trainer import utils

    if not hasattr(utils, "add_fused_lm_head") or not hasattr(utils, "_ChunkedLogProbFunction"):
        return False
    if utils._ChunkedLogProbFunction is None:
        utils._ChunkedLogProbFunction = ChunkedLogProb
    return True
