"""Plain-loop LoRA sweep mirroring booktune's recipe (batch 1, AdamW, cosine, 3% warmup, clip 1.0, bf16), for fast
quality proxies on a GPU. Not part of the package; docs/quality.md gives the commands and the figures.

    python dev/lora_sweep.py convert MODEL.gguf OUTDIR        # once: dequantized safetensors
    python dev/lora_sweep.py MODEL ROWS.json CONFIGS.json INDEX OUT.jsonl

ROWS.json holds {"train": [...], "eval": [...]} rows of input_ids / labels (and "book" for train rows), made with
booktune's own tokenize_records, so the labels are the recipe's. Each config is a JSON object; its keys:
r, alpha, lr, dropout, targets, rslora, dora, layers, full, loraplus, wd, epochs, max_steps, warmup, seed, evals
(held-out scorings per epoch), and the levers measured in the fifth session:
- sched: "cosine" (default), "constant" or "linear";
- order: "shuffle" (default) or "book": each book front to back, the books interleaved by relative position, so the
  last steps train on the text just before the held-out tail;
- ema: decay of an exponential moving average of the trained weights, scored instead of the last weights;
- soup: train this many runs (seeds seed, seed+1, ...) and score the average of their merged weights;
- word_drop: probability of replacing an answer token's input (never its label) with a random token;
- embed_lr: also train the (tied) token embeddings at this learning rate, in fp32;
- subset: train on this fraction of the training rows, drawn at random with subset_seed (a learning curve).
"""
import copy
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

dev = "cuda" if torch.cuda.is_available() else "cpu"
SCHEDULES = {"cosine": get_cosine_schedule_with_warmup, "linear": get_linear_schedule_with_warmup}


def load_base(path, dtype=torch.bfloat16):
    if path.endswith(".gguf"):
        d, f = os.path.split(path)
        m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        if getattr(m, "hf_quantizer", None) is not None:
            m.hf_quantizer.remove_quantization_config(m)
    else:
        m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return m.to(dtype).to(dev)


@torch.no_grad()
def evaluate(model, rows):
    model.eval()
    tot, n = 0.0, 0
    for r in rows:
        ids = torch.tensor([r["input_ids"]], device=dev)  # [1, T]
        lab = torch.tensor([r["labels"]], device=dev)  # [1, T]
        with torch.autocast(dev, dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits[:, :-1].float()  # [1, T-1, V]
        t = lab[:, 1:]
        tot += torch.nn.functional.cross_entropy(logits.transpose(1, 2), t, ignore_index=-100, reduction="sum").item()
        n += int((t != -100).sum())
    model.train()
    return tot / n


def step_order(train, total, cfg):
    """Row indices for `total` steps: reshuffled every epoch, or each book in reading order, books interleaved."""
    if cfg.get("order") == "book":
        pos = {}
        for i, r in enumerate(train):
            pos.setdefault(r["book"], []).append(i)
        key = {i: (k / len(ix), b) for b, ix in pos.items() for k, i in enumerate(ix)}
        epoch = sorted(range(len(train)), key=key.__getitem__)
        return (epoch * (total // len(epoch) + 1))[:total]
    g, order = random.Random(cfg.get("seed", 42)), []
    while len(order) < total:
        ep = list(range(len(train)))
        g.shuffle(ep)
        order += ep
    return order[:total]


def wrap(base, cfg):
    """The model to train (a LoRA wrapper, or a copy for full fine-tuning) and its optimizer's parameter groups."""
    model = copy.deepcopy(base)
    if cfg.get("full"):
        model.float()
        return model, [{"params": [p for p in model.parameters()], "lr": cfg["lr"]}]
    if cfg.get("embed_lr"):
        model.float()  # tiny embedding updates vanish in bf16
    lc = LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], lora_dropout=cfg.get("dropout", 0.0), task_type="CAUSAL_LM",
                    target_modules=cfg.get("targets", "all-linear"), use_rslora=cfg.get("rslora", False),
                    use_dora=cfg.get("dora", False), layers_to_transform=cfg.get("layers"))
    model = get_peft_model(model, lc)
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg["lr"]}]
    if cfg.get("embed_lr"):
        emb = model.get_input_embeddings().weight  # tied with lm_head in SmolLM2
        emb.requires_grad_(True)
        groups.append({"params": [emb], "lr": cfg["embed_lr"]})
    return model, groups


def train_one(base, rows, cfg, seed):
    """Train one model; returns it (EMA weights swapped in when asked) and its held-out curve."""
    cfg = {**cfg, "seed": seed}
    torch.manual_seed(seed)
    model, groups = wrap(base, cfg)
    params = [p for g in groups for p in g["params"]]
    if cfg.get("loraplus"):
        from peft.optimizers import create_loraplus_optimizer
        opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=cfg["lr"], loraplus_lr_ratio=cfg["loraplus"])
    else:
        opt = torch.optim.AdamW(groups, lr=cfg["lr"], weight_decay=cfg.get("wd", 0.0))
    train = rows["train"]
    total = math.ceil(len(train) * cfg.get("epochs", 1.0)) if cfg.get("max_steps", -1) < 0 else cfg["max_steps"]
    warm = math.ceil(cfg.get("warmup", 0.03) * total)
    sched = (get_constant_schedule_with_warmup(opt, warm) if cfg.get("sched") == "constant"
             else SCHEDULES[cfg.get("sched", "cosine")](opt, warm, total))
    ema = [p.detach().clone().float() for p in params] if cfg.get("ema") else None
    every = max(1, len(train) // cfg.get("evals", 2))
    gen = torch.Generator(device=dev).manual_seed(seed)
    curve = []
    model.train()
    for step, i in enumerate(step_order(train, total, cfg), 1):
        r = train[i]
        ids = torch.tensor([r["input_ids"]], device=dev)  # [1, T]
        lab = torch.tensor([r["labels"]], device=dev)  # [1, T]
        if cfg.get("word_drop"):
            hit = (lab != -100) & (torch.rand(ids.shape, device=dev, generator=gen) < cfg["word_drop"])
            noise = torch.randint(0, model.config.vocab_size, ids.shape, device=dev, generator=gen)
            ids = torch.where(hit, noise, ids)
        with torch.autocast(dev, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=lab).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if ema is not None:
            with torch.no_grad():
                for e, p in zip(ema, params):
                    e.mul_(cfg["ema"]).add_(p.detach().float(), alpha=1 - cfg["ema"])
        if step % every == 0 or step == total:
            curve.append((step, round(math.exp(evaluate(model, rows["eval"])), 3)))
    if ema is not None:
        with torch.no_grad():
            for e, p in zip(ema, params):
                p.copy_(e.to(p.dtype))
    return model, curve


def merged_state(model, cfg):
    """Full weights (fp32) of a trained model, the adapter merged in."""
    # fp32 first: merged into bf16 weights, most of a small LoRA delta rounds away
    m = model if cfg.get("full") else copy.deepcopy(model).float().merge_and_unload()
    return {k: v.detach().float().clone() for k, v in m.state_dict().items()}


def run(base, rows, cfg):
    t0 = time.time()
    seed, k = cfg.get("seed", 42), cfg.get("soup", 1)
    model, curve = train_one(base, rows, cfg, seed)
    res = {"cfg": cfg, "final_ppl": curve[-1][1], "curve": curve}
    if k > 1:
        acc = merged_state(model, cfg)
        members = [curve[-1][1]]
        for j in range(1, k):
            model, curve = train_one(base, rows, cfg, seed + j)
            members.append(curve[-1][1])
            for name, v in merged_state(model, cfg).items():
                acc[name] += v
        soup = copy.deepcopy(base).float()
        soup.load_state_dict({n: v / k for n, v in acc.items()})
        res |= {"members": members, "final_ppl": round(math.exp(evaluate(soup, rows["eval"])), 3)}
    if cfg.get("ema") and k == 1:  # the curve scored the raw weights; the result is the average's
        res["final_ppl"] = round(math.exp(evaluate(model, rows["eval"])), 3)
    res["secs"] = round(time.time() - t0, 1)
    return res


def main(argv: list[str]) -> None:
    if argv[0] == "convert":
        load_base(argv[1], torch.float32).cpu().save_pretrained(argv[2])
        return
    model_path, rows_path, configs, index, out = argv
    base = load_base(model_path)
    cfg = json.loads(Path(configs).read_text())[int(index)]
    rows = json.loads(Path(cfg.get("rows", rows_path)).read_text())
    if cfg.get("subset"):
        keep = random.Random(cfg.get("subset_seed", 0)).sample(range(len(rows["train"])),
                                                               round(cfg["subset"] * len(rows["train"])))
        rows["train"] = [rows["train"][i] for i in sorted(keep)]
    result = ({"base": math.exp(evaluate(base, rows["eval"])), "rows": cfg.get("rows")} if cfg.get("base")
              else run(base, rows, cfg))
    with open(out, "a") as f:  # one line per config; parallel processes append whole lines
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
