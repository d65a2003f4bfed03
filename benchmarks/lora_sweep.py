"""Plain-loop LoRA sweep mirroring booktune's recipe (batch 1, AdamW, cosine, 3% warmup, clip 1.0, bf16 autocast),
for fast proxies on a GPU. Usage: see docs/quality.md. Not part of the package."""
import copy, json, math, os, random, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, get_cosine_schedule_with_warmup, get_constant_schedule_with_warmup

dev = "cuda" if torch.cuda.is_available() else "cpu"


def load_base(path):
    if path.endswith(".gguf"):
        d, f = os.path.split(path)
        m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        if getattr(m, "hf_quantizer", None) is not None:
            m.hf_quantizer.remove_quantization_config(m)
    else:
        m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return m.to(torch.bfloat16).to(dev)


@torch.no_grad()
def evaluate(model, rows):
    model.eval()
    tot, n = 0.0, 0
    for r in rows:
        ids = torch.tensor([r["input_ids"]], device=dev)
        lab = torch.tensor([r["labels"]], device=dev)
        with torch.autocast(dev, dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits[:, :-1].float()
        t = lab[:, 1:]
        tot += torch.nn.functional.cross_entropy(logits.transpose(1, 2), t, ignore_index=-100, reduction="sum").item()
        n += int((t != -100).sum())
    model.train()
    return tot / n


def run(base, rows, cfg, evals_per_epoch=2):
    torch.manual_seed(cfg.get("seed", 42))
    model = copy.deepcopy(base)
    tm = cfg.get("targets", "all-linear")
    lc = LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], lora_dropout=cfg.get("dropout", 0.0), task_type="CAUSAL_LM",
                    target_modules=tm, use_rslora=cfg.get("rslora", False), use_dora=cfg.get("dora", False),
                    layers_to_transform=cfg.get("layers"))
    if cfg.get("full"):
        model.float()
    else:
        model = get_peft_model(model, lc)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.get("loraplus"):
        from peft.optimizers import create_loraplus_optimizer
        opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=cfg["lr"], loraplus_lr_ratio=cfg["loraplus"])
    else:
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg.get("wd", 0.0))
    train = rows["train"]
    epochs = cfg.get("epochs", 1.0)
    total = math.ceil(len(train) * epochs) if cfg.get("max_steps", -1) < 0 else cfg["max_steps"]
    warm = math.ceil(cfg.get("warmup", 0.03) * total)
    sched = (get_constant_schedule_with_warmup(opt, warm) if cfg.get("sched") == "constant"
             else get_cosine_schedule_with_warmup(opt, warm, total))
    g = random.Random(cfg.get("seed", 42))
    order = []
    while len(order) < total:
        ep = list(range(len(train)))
        g.shuffle(ep)
        order += ep
    curve = []
    every = max(1, len(train) // evals_per_epoch)
    t0 = time.time()
    model.train()
    for step, i in enumerate(order[:total], 1):
        r = train[i]
        ids = torch.tensor([r["input_ids"]], device=dev)
        lab = torch.tensor([r["labels"]], device=dev)
        with torch.autocast(dev, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=lab).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
        if step % every == 0 or step == total:
            curve.append((step, round(math.exp(evaluate(model, rows["eval"])), 2)))
    return {"cfg": cfg, "final_ppl": curve[-1][1], "curve": curve, "secs": round(time.time() - t0, 1)}


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        m = load_base(sys.argv[2]).float().cpu()
        m.save_pretrained(sys.argv[3]); sys.exit()
    base = load_base(sys.argv[1])
    cfg = json.load(open(sys.argv[3]))[int(sys.argv[4])]
    rows = json.load(open(cfg.get("rows", sys.argv[2])))
    if cfg.get("base"):
        print(json.dumps({"base": math.exp(evaluate(base, rows["eval"])), "rows": cfg.get("rows")}), file=open(sys.argv[5], "a"), flush=True)
        sys.exit()
    res = run(base, rows, cfg)
    print(json.dumps(res), file=open(sys.argv[5], "a"), flush=True)
