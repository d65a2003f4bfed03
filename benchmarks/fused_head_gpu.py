"""On a CUDA GPU: the evaluation's held-out NLL through TRL's fused head (its Triton kernel there) against the
cross-entropy of the whole batch's logits, timed, with its peak memory, on a random model of the default model's
shape, with and without a LoRA adapter, in float32 and bf16; then booktune's plain-PyTorch kernel on the same GPU
(what runs where PyTorch ships no Triton). One batch of 4 rows of up to 1,024 tokens, the first 100 of each
unlabelled; each way timed once after a warm-up.

    python benchmarks/fused_head_gpu.py    # one line a case; exits 1 if a difference exceeds its bound
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from booktune.evaluation import loss  # noqa: E402

BOUND = {torch.float32: 1e-5, torch.bfloat16: 2e-3}  # bf16 logits round to 8 bits; each path rounds its own


def model_of_default_shape(dtype: torch.dtype, lora: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).to("cuda", dtype)
    if lora:
        model = get_peft_model(model, LoraConfig(r=16, target_modules="all-linear", init_lora_weights=False))
    return model.eval()


def batch(rows: int = 4, width: int = 1024) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 49152, (rows, width), generator=g)
    lengths = torch.randint(width // 2, width + 1, (rows,), generator=g)
    mask = (torch.arange(width)[None] < lengths[:, None]).long()
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :100] = -100  # the prompt
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def timed(model, b) -> tuple[float, int, float, float]:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    nll, n = loss.summed_nll(model, b)
    torch.cuda.synchronize()
    return nll, n, time.perf_counter() - started, torch.cuda.max_memory_allocated() / 2**30


def main() -> int:
    from trl.trainer import utils as trl_utils

    from booktune.training.headloss import ChunkedLogProb

    kernels = {"TRL (Triton)": trl_utils._ChunkedLogProbFunction, "booktune (PyTorch)": ChunkedLogProb}
    fused, worst = loss.fused_head, 0.0
    b = batch()
    for dtype in (torch.float32, torch.bfloat16):
        for lora in (False, True):
            model = model_of_default_shape(dtype, lora)
            loss.fused_head = lambda model: None
            timed(model, b)  # warm-up
            full = timed(model, b)
            loss.fused_head = fused
            for name, kernel in kernels.items():
                trl_utils._ChunkedLogProbFunction = kernel
                timed(model, b)
                got = timed(model, b)
                diff = abs(got[0] - full[0]) / abs(full[0])
                ok = got[1] == full[1] and diff < BOUND[dtype]
                worst = max(worst, diff / BOUND[dtype])
                print(f"{str(dtype)[6:]:8} lora={lora!s:5} {name:18} nll {got[0]:.6g} vs {full[0]:.6g} "
                      f"(rel {diff:.1e}, tokens {got[1]} vs {full[1]}) {got[2] * 1e3:.1f} ms vs "
                      f"{full[2] * 1e3:.1f} ms, peak {got[3]:.2f} vs {full[3]:.2f} GiB {'ok' if ok else 'FAIL'}")
            trl_utils._ChunkedLogProbFunction = kernels["TRL (Triton)"]
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
