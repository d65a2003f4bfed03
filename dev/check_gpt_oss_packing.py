"""On a CUDA GPU with Unsloth: packed GPT-OSS examples stay apart under booktune's masks, sliding window and sinks
included.

1. Kernel: Unsloth's own flex attention with sinks (`flex_attention_with_sink`), given booktune's per-example block
   masks, against float32 eager attention with sinks run on each example alone: outputs and the gradients of q, k,
   v and the sinks, full and 128-token sliding layers.
2. Model: a two-layer GPT-OSS (real head layout, 4-bit) built through booktune's recipe with Unsloth; the summed
   loss of one packed row against its examples' losses one by one, in training and in evaluation mode, and the
   same packed row with booktune's masks turned off (which must differ: the check can fail).

    python dev/check_gpt_oss_packing.py --models /tmp/bench-models   # exits 1 if a check fails
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]


def rel(a, b) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def reference(q, k, v, sinks, lengths, window):
    """Eager attention with sinks, float32, each example alone (transformers' GPT-OSS eager rule)."""
    import torch

    outs, start = [], 0
    groups = q.shape[1] // k.shape[1]
    for n in lengths:
        qs, ks, vs = (x[:, :, start:start + n].float() for x in (q, k, v))
        ks, vs = ks.repeat_interleave(groups, 1), vs.repeat_interleave(groups, 1)
        scores = qs @ ks.transpose(-1, -2) * q.shape[-1] ** -0.5
        i = torch.arange(n, device=q.device)
        ok = i[None, :] <= i[:, None]
        if window:
            ok &= i[:, None] - i[None, :] < window
        scores = scores.masked_fill(~ok, float("-inf"))
        logits = torch.cat([scores, sinks.float().view(1, -1, 1, 1).expand(1, -1, n, 1)], dim=-1)
        probs = torch.softmax(logits, dim=-1)[..., :-1]
        outs.append(probs @ vs)
        start += n
    return torch.cat(outs, dim=2).transpose(1, 2)


def kernel_check(window: int | None) -> float:
    import torch
    from unsloth_zoo.flex_attention import attention_sink

    from booktune.training.backends.unsloth import narrow_flex_masks

    torch.manual_seed(0)
    lengths = [300, 1, 700, 47, 1000]
    state = narrow_flex_masks()
    state.update(torch.cat([torch.arange(n) for n in lengths])[None].cuda())
    total = sum(lengths)

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sinks = torch.nn.Parameter(torch.randn(64, device="cuda"))
            self.num_key_value_groups, self.scaling, self.sliding_window = 8, 64 ** -0.5, window

    attn = Attn().train()
    base = [torch.randn(1, h, total, 64, device="cuda") * 2 for h in (64, 8, 8)]
    grad = torch.randn(1, total, 64, 64, device="cuda")
    results = {}
    for name in ("flex", "ref"):
        xs = [x.detach().to(torch.bfloat16 if name == "flex" else torch.float32).requires_grad_() for x in base]
        attn.sinks.grad = None
        out = (attention_sink.flex_attention_with_sink(attn, *xs) if name == "flex"
               else reference(*xs, attn.sinks, lengths, window))
        out.backward(grad.to(out.dtype))
        results[name] = [out] + [x.grad for x in xs] + [attn.sinks.grad.clone()]
    errors = [rel(a, b) for a, b in zip(results["flex"], results["ref"])]
    print(f"kernel, window {window}: out, dq, dk, dv, dsinks rel err " + ", ".join(f"{e:.1e}" for e in errors))
    return max(errors)


def summed(model, batch) -> float:
    import torch

    batch = {k: v.cuda() for k, v in batch.items()}
    with torch.no_grad():
        loss = model(**batch).loss
    return float(loss) * int((batch["labels"][:, 1:] != -100).sum())


def model_check(models: Path) -> list[tuple[str, float, float]]:
    import train_throughput as tt
    from bench_models import build_model, make_rows

    from booktune.training.backends.unsloth import _FLEX_EXAMPLES
    from booktune.training.packing import PackedCollator, pack

    spec = {"shape": "gpt-oss-tiny", "run": "check", "model_dir": str(build_model("gpt-oss-tiny", models)),
            "seq": 2048, "batch": 1, "lora_r": 8, "warmup": 1, "steps": 1, "data": "seed"}
    trainer, _, _, batches = tt.run_booktune(spec, "auto")
    print("batches:", batches)
    model = trainer.model
    rows = make_rows(5, 4096, lo=150, hi=450, seed=3)
    batch = PackedCollator(pad_token_id=0, flatten=True)(pack(rows, 2048))
    alone = [PackedCollator(pad_token_id=0, flatten=True)([dict(r, seq_lengths=[len(r["input_ids"])])])
             for r in rows]
    out = []
    for mode in ("train", "eval"):
        getattr(model, mode)()
        packed, single = summed(model, batch), sum(summed(model, b) for b in alone)
        out.append((f"{mode}, booktune's masks", packed, single))
    model.train()
    state = _FLEX_EXAMPLES[0]
    state.update = lambda position_ids: setattr(state, "length", 0)  # Unsloth's own mask over the whole row
    out.append(("train, Unsloth's row-wide mask", summed(model, batch), sum(summed(model, b) for b in alone)))
    del state.update
    for name, packed, single in out:
        diff = abs(packed - single) / single
        print(f"model, {name}: packed {packed:.4f}, one by one {single:.4f}, rel diff {diff:.1e}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    a = ap.parse_args()
    from booktune.training.backends.unsloth import UNSLOTH

    UNSLOTH.activate()  # Unsloth first, as the backend does
    worst = max(kernel_check(None), kernel_check(128))
    (_, p1, s1), (_, p2, s2), (_, p3, s3) = model_check(a.models)
    ok = worst < 2e-2 and abs(p1 - s1) < 5e-3 * s1 and abs(p2 - s2) < 5e-3 * s2 and abs(p3 - s3) > 2 * abs(p1 - s1)
    print(f"worst kernel error {worst:.1e}; {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
