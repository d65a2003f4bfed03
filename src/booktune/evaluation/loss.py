"""Held-out loss and perplexity on answer tokens, with the same labels as training."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from booktune.console import progress_bar


@dataclass
class HeldOutLoss:
    loss: float  # mean negative log-likelihood per answer token, in nats
    perplexity: float
    tokens: int  # answer tokens scored
    examples: int
    bits_per_byte: float | None = None  # total NLL in bits over the answers' UTF-8 bytes: comparable across tokenizers
    bytes: int | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"loss": self.loss, "perplexity": self.perplexity, "tokens": self.tokens, "examples": self.examples,
                "bits_per_byte": self.bits_per_byte, "bytes": self.bytes}


def pad_batch(rows: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of {'input_ids', 'labels'} rows into [B, T] tensors."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [B, T]
    labels = torch.full((len(rows), width), -100, dtype=torch.long)  # [B, T]
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T]
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def fused_head(model: Any) -> Any:
    """The causal LM inside `model` (PEFT's wrapper or not), or None where this TRL has no fused head or Unsloth
    replaced the model's forward (its own loss path stays as it was). Called with `labels` and
    `fused_lm_head=True`, it returns each labelled token's log-probability without the logits of the whole batch:
    TRL's fused LM head, as training computes its loss (training.headloss)."""
    from booktune.training.headloss import install

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    if type(causal).forward.__module__.startswith("unsloth") or not install():
        return None
    from trl.trainer.utils import add_fused_lm_head

    if not getattr(causal, "booktune_fused_head", False):
        add_fused_lm_head(causal, outputs=("log_probs",))
        causal.booktune_fused_head = True
    return causal


@torch.no_grad()
def summed_nll(model: Any, batch: dict[str, torch.Tensor]) -> tuple[float, int]:
    """Sum of next-token NLL over labelled positions, and their count."""
    device = next(model.parameters()).device
    causal = fused_head(model)
    if causal is not None:  # labelled positions only, the logits a block of tokens at a time
        out = causal(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                     labels=batch["labels"].to(device), fused_lm_head=True)
        return -out.log_probs.sum().item(), int(out.label_mask.sum())
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    logits = logits[:, :-1].float()  # [B, T-1, V]: position t predicts token t+1
    targets = batch["labels"][:, 1:].to(device)  # [B, T-1]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="sum")
    return nll.item(), int((targets != -100).sum())


def heldout_loss(model: Any, rows: list[dict[str, Any]], *, pad_id: int, batch_size: int = 4,
                 label: str = "held-out loss", tokenizer: Any = None) -> HeldOutLoss:
    """Mean answer-token loss over `rows` (tokenized by booktune.dataset.tokenize), with a progress bar; bits per
    byte too when `tokenizer` is given."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    ordered = sorted(rows, key=lambda r: len(r["input_ids"]))  # similar lengths together: less padding
    with progress_bar(transient=True) as bar:
        task = bar.add_task(label, total=len(ordered), info="")
        for i in range(0, len(ordered), batch_size):
            chunk = ordered[i : i + batch_size]
            nll, n = summed_nll(model, pad_batch(chunk, pad_id))
            total, count = total + nll, count + n
            bar.update(task, advance=len(chunk))
    model.train(was_training)
    loss = total / max(count, 1)
    result = HeldOutLoss(loss, math.exp(loss), count, len(rows))
    if tokenizer is not None:
        result.bytes = answer_bytes(tokenizer, rows)
        result.bits_per_byte = total / math.log(2) / max(result.bytes, 1)
    return result


def answer_bytes(tokenizer: Any, rows: list[dict[str, Any]]) -> int:
    """UTF-8 bytes of the answer text the labelled tokens spell (special tokens such as end-of-turn excluded)."""
    total = 0
    for r in rows:
        ids = [t for t, label in zip(r["input_ids"], r["labels"]) if label != -100]
        total += len(tokenizer.decode(ids, skip_special_tokens=True).encode("utf-8"))
    return total
