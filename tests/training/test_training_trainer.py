"""booktune's SFTTrainer: LoRA inputs left in their dtype under autocast, bit for bit the same loss and gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft.helpers import disable_input_dtype_casting
from torch.utils._python_dispatch import TorchDispatchMode


class CountCasts(TorchDispatchMode):
    """Counts dtype conversions (aten._to_copy) run under it."""

    def __init__(self):
        super().__init__()
        self.casts = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.casts += func is torch.ops.aten._to_copy.default
        return func(*args, **(kwargs or {}))


def lora_model(tiny_model_dir: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.float32}
    return model


def step(model, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), CountCasts() as count:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, count.casts


def test_lora_inputs_as_is_change_no_bit_of_loss_or_gradients(tiny_model_dir):
    model = lora_model(tiny_model_dir)
    ids = torch.randint(0, model.config.vocab_size, (2, 64))
    loss, grads, casts = step(model, ids)
    with disable_input_dtype_casting(model):  # what booktune's trainer enters for train()
        loss_as_is, grads_as_is, casts_as_is = step(model, ids)
    assert casts_as_is < casts  # PEFT's casts are skipped...
    assert torch.equal(loss, loss_as_is)  # ...and nothing changes
    assert grads.keys() == grads_as_is.keys() and len(grads) == 28  # 7 projections x 2 layers, A and B each
    for name in grads:
        assert torch.equal(grads[name], grads_as_is[name]), name
    with torch.no_grad():  # restored: the model runs again without autocast, as generation after training does
        model(input_ids=ids)


@pytest.mark.parametrize("dtype, as_is", [("bf16", True), ("fp32", False)])
def test_the_trainer_leaves_lora_inputs_as_is_only_under_autocast(tmp_path, tiny_data_dir, tiny_model_dir,
                                                                   dtype, as_is):
    from peft.tuners.tuners_utils import BaseTunerLayer
    from transformers import TrainerCallback

    from booktune.config import TrainConfig
    from booktune.dataset.rows import train_rows
    from booktune.model import load_tokenizer
    from booktune.training.backends import resolve
    from booktune.training.recipe import build_trainer

    seen = []

    class Record(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            seen.append({m.cast_input_dtype_enabled for m in model.modules() if isinstance(m, BaseTunerLayer)})

    t = TrainConfig(model=str(tiny_model_dir), max_steps=2, eval_steps=0, report_to="none", dtype=dtype,
                    device="cpu", learning_rate=1e-3)
    backend = resolve("hf", "cpu", "auto")[0]
    tokenizer = load_tokenizer(t.model)
    rows = train_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")[0]
    trainer = build_trainer(t, tmp_path, rows, [], tokenizer, backend=backend, callbacks=[Record()]).trainer
    trainer.train()
    assert seen == [{not as_is}] * 2
    layers = [m for m in trainer.model.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and all(m.cast_input_dtype_enabled for m in layers)  # PEFT's behaviour back after training


def test_trls_own_loss_runs_without_triton(tmp_path, tiny_data_dir, tiny_model_dir):
    """Where PyTorch ships no Triton, TRL's fused head runs booktune's kernel (training.headloss): the loss and every
    LoRA gradient equal transformers' loss over the full logits, and TRL's entropy and token accuracy are logged."""
    from transformers import Trainer
    from trl.trainer import utils as trl_utils

    from booktune.config import TrainConfig
    from booktune.dataset.rows import train_rows
    from booktune.model import load_tokenizer
    from booktune.training.backends import resolve
    from booktune.training.headloss import ChunkedLogProb
    from booktune.training.recipe import build_trainer

    t = TrainConfig(model=str(tiny_model_dir), max_steps=2, eval_steps=0, report_to="none", dtype="fp32",
                    device="cpu", learning_rate=1e-3, logging_steps=1)
    tokenizer = load_tokenizer(t.model)
    rows = train_rows(tiny_data_dir, tokenizer, max_seq_length=1024, truncation="split")[0]
    trainer = build_trainer(t, tmp_path, rows, [], tokenizer, backend=resolve("hf", "cpu", "auto")[0]).trainer
    try:
        import triton  # noqa: F401
    except ImportError:
        assert trl_utils._ChunkedLogProbFunction is ChunkedLogProb
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    results = []
    for compute in (type(trainer).compute_loss, Trainer.compute_loss):
        trainer.model.zero_grad(set_to_none=True)
        loss = compute(trainer, trainer.model, dict(batch))
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in trainer.model.named_parameters()
                                      if p.grad is not None}))
    (fused, fused_grads), (full, full_grads) = results
    assert fused == pytest.approx(full, rel=1e-5)
    assert fused_grads.keys() == full_grads.keys() and len(fused_grads) == 28
    for name in fused_grads:
        assert torch.allclose(fused_grads[name], full_grads[name], rtol=1e-3, atol=1e-7), name
    trainer.model.zero_grad(set_to_none=True)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(0 <= h["mean_token_accuracy"] <= 1 and h["entropy"] > 0 for h in logged)
