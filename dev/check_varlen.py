"""On a CUDA GPU: booktune's varlen flash attention against per-segment SDPA in float32, forward and gradients.

    python dev/check_varlen.py      # prints relative errors; exits 1 if any exceeds 2e-2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from booktune.training.varlen import flash_varlen_attn, segment_sdpa  # noqa: E402


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def check(lengths: list[int], hq: int, hkv: int, dim: int, window: int) -> float:
    torch.manual_seed(len(lengths) * 7 + hq)
    total = sum(lengths)
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32, device="cuda")
    q, k, v = (torch.randn(total, h, dim, device="cuda", dtype=torch.float32) for h in (hq, hkv, hkv))
    grad = torch.randn(total, hq, dim, device="cuda")
    errors = []
    outs = {}
    for name, dtype in (("flash", torch.bfloat16), ("ref", torch.float32)):
        xs = [x.detach().to(dtype).requires_grad_() for x in (q, k, v)]
        if name == "flash":
            out = flash_varlen_attn(*xs, cu, cu, max(lengths), max(lengths), scale=dim ** -0.5,
                                    window_size=(window, 0) if window >= 0 else (-1, 0))
        else:
            heads_first = [x.transpose(0, 1).unsqueeze(0) for x in xs]  # [1, H, T, D], as the model computes
            out = segment_sdpa(*heads_first, cu, dim ** -0.5, window)[0].transpose(0, 1)
        out.backward(grad.to(dtype))
        outs[name] = [out] + [x.grad for x in xs]
    for got, want in zip(outs["flash"], outs["ref"]):
        errors.append(rel(got, want))
    print(f"lengths {lengths} heads {hq}/{hkv} dim {dim} window {window}: out, dq, dk, dv rel err "
          + ", ".join(f"{e:.1e}" for e in errors))
    return max(errors)


def main() -> int:
    worst = max(check([700, 900, 448], 32, 8, 128, -1), check([2048], 32, 8, 64, -1),
                check([5, 1000, 1043, 1, 999], 64, 8, 64, -1), check([600, 1448], 32, 8, 128, 127))
    print(f"worst relative error {worst:.1e} (bf16 kernel vs float32 reference)")
    return 0 if worst < 2e-2 else 1


if __name__ == "__main__":
    sys.exit(main())
