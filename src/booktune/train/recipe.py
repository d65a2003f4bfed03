"""The training recipe: a prepared DATA folder in, a LoRA adapter in RUN out. Reads top to bottom.

Features
- LoRA (PEFT) on a 4-bit NF4 base (bitsandbytes) by default on CUDA; bf16 or fp32 base on CPU.
- Loss on assistant tokens only, end-of-turn token included: labels come from `booktune.chat.build_example`, the one
  masking function, and TRL's collator uses them as they are (dataset preparation is skipped).
- Over-long examples are split at sentence ends or dropped (`truncation`), never trained with their end cut off.
- TRL's SFTTrainer runs the loop: checkpoints every `save_steps`, `resume=True` continues from the last complete one,
  loss to TensorBoard (RUN/logs) and to RUN/loss.png, a rich progress bar.
- RUN describes itself: adapter, tokenizer, chat template, config and booktune version (see train/artifacts.py).
- On the Unsloth backend, checkpointed activations wait in CPU memory (`offload_activations`; by default on, but
  kept on the GPU under DDP where plan says they fit).
- Several processes (torchrun / accelerate / `gpus`): DDP or FSDP (train/distributed.py), and each step's packed rows
  dealt to the ranks by token count, the step's rows unchanged (`balance_tokens`, train/balance.py).

Failure modes it reports before spending compute
- DATA is not a prepared folder, or its train split is empty                       -> DataError
- every example is longer than max_seq_length or fully masked                      -> TruncationError
- a chat template whose answer spans cannot be located                             -> MaskingError
- 4-bit asked for without CUDA                                                     -> TrainError
- `resume=True` with no complete checkpoint starts from scratch, and says so.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from booktune.console import console, quiet_libraries


class TrainError(ValueError):
    """A training setting that cannot work; the message names the field."""


@dataclass
class TrainResult:
    run_dir: Path
    adapter_dir: Path
    model: Any  # the PeftModel, still in memory, for evaluation and samples
    tokenizer: Any
    log_history: list[dict[str, Any]]
    metadata: dict[str, Any]


def train_adapter(
    data_dir: str | Path,
    run_dir: str | Path,
    *,
    model: str = "default",
    epochs: float = 1.0,
    max_steps: int = -1,
    learning_rate: float = 2e-4,
    warmup_ratio: float = 0.03,
    batch_size: int = 1,
    grad_accum: int = 1,
    max_seq_length: int = 1024,
    truncation: str = "split",
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.0,
    target_modules: list[str] | str = "all-linear",
    load_in_4bit: bool | None = None,
    dtype: str = "auto",
    gradient_checkpointing: bool | None = None,
    offload_activations: bool | None = None,
    logging_steps: int = 5,
    eval_steps: int = 50,
    save_steps: int = 50,
    save_total_limit: int = 2,
    seed: int = 42,
    device: str | None = None,
    trust_remote_code: bool = False,
    backend: str = "auto",
    liger: str = "auto",
    packing: bool = True,
    gpus: str | None = None,  # used by booktune.api, which launches the processes (train/launch.py)
    distributed: str = "auto",
    global_batch_size: int | None = None,
    balance_tokens: bool = True,
    resume: bool = False,
    base_model: Any = None,
    tokenizer: Any = None,
    config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on DATA's train split and save it in RUN. `base_model`/`tokenizer` reuse loaded ones."""
    from booktune.train.backends import LoraSettings, load_for_training, resolve_backend, use_liger

    from booktune.train.distributed import backend_for, early_strategy

    backend, fsdp_note = backend_for(backend, early_strategy(distributed))  # Unsloth shards its own way: FSDP -> hf
    backend = resolve_backend(backend, device)  # imports Unsloth, when chosen, before transformers / TRL / PEFT
    from datasets import Dataset
    from transformers import PrinterCallback, set_seed

    from booktune.dataset.io import check_data_dir
    from booktune.evaluate.rows import heldout_rows
    from booktune.model import load_tokenizer
    from booktune.train.artifacts import run_metadata
    from booktune.train.balance import deal_by_tokens
    from booktune.train.callbacks import DescribeCheckpoint, RichProgress
    from booktune.train.distributed import scale_out, silence_other_ranks
    from booktune.train.packing import choose_batching, training_batches
    from booktune.train.trainer import sft_trainer_class

    quiet_libraries()
    silence_other_ranks()  # under torchrun / accelerate launch only rank 0 prints and writes
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)

    # 1. Data: conversations -> input_ids + labels, by the one masking function.
    check_data_dir(data_dir)  # before any model loads: a wrong folder should fail in a second
    tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
    rows, report = train_rows(data_dir, tokenizer, max_seq_length=max_seq_length, truncation=truncation)
    held = heldout_rows(data_dir, tokenizer, max_seq_length=max_seq_length, truncation=truncation) if eval_steps else []

    # 2. Precision and device: 4-bit NF4 base on CUDA unless turned off; bf16 where supported.
    prec = choose_precision(device, dtype, load_in_4bit, gradient_checkpointing)
    # Launched on several processes: DDP or FSDP, and accumulation that keeps the global batch (distributed.py).
    scale = scale_out(distributed, device=prec.device, settings=locals(),  # plan reads model, lora_r, batch...
                      global_batch_size=global_batch_size, batch_size=batch_size, grad_accum=grad_accum,
                      backend=backend, offload_activations=offload_activations)
    prec = replace(prec, offload_activations=scale.offload_activations)  # Unsloth: on, but not under DDP if it fits
    liger_on = use_liger(liger, backend, prec.device)  # fused kernels for the hf backend, where installed

    # 3. Model and LoRA: Unsloth builds its PeftModel itself; for hf, TRL wraps the base (and prepares 4-bit).
    lora_settings = LoraSettings(lora_r, lora_alpha, lora_dropout, target_modules, seed)
    base_model, lora = load_for_training(backend, model, replace(prec, device=scale.load_device(prec.device)),
                                         lora_settings, max_seq_length=max_seq_length, packing=packing,
                                         trust_remote_code=trust_remote_code, base_model=base_model)
    base_model.config.use_cache = False  # a KV cache would turn packed-sequence isolation off; restored below

    # Batches: packed rows, each example attending only to itself, or padded to a few lengths (packing.py).
    batching = choose_batching(backend, base_model, packing)
    train_data, collator = training_batches(rows, batching, max_len=max_seq_length,
                                            pad_token_id=tokenizer.pad_token_id)
    eval_data = training_batches(held, batching, max_len=max_seq_length, pad_token_id=tokenizer.pad_token_id)[0]

    # 4. The loop: TRL's SFTTrainer on pre-tokenized rows (its own preparation is skipped: our labels stand).
    args = sft_args(run_dir, prec, epochs=epochs, max_steps=max_steps, learning_rate=learning_rate,
                    warmup_ratio=warmup_ratio, batch_size=batch_size, grad_accum=scale.grad_accum,
                    logging_steps=logging_steps, save_steps=save_steps, save_total_limit=save_total_limit,
                    seed=seed, max_seq_length=max_seq_length, eval_steps=eval_steps if eval_data else 0,
                    extra=scale.trainer_args(prec.gradient_checkpointing)
                    | {"train_sampling_strategy": batching.sampling, "use_liger_kernel": liger_on})
    metadata = run_metadata(base_model=model, data_dir=str(data_dir), config=config)
    metadata["tokens"] = report.__dict__ | {"dropped_ids": report.dropped_ids[:20]}
    trainer = sft_trainer_class()(
        model=base_model,
        args=args,
        train_dataset=Dataset.from_list(train_data),
        eval_dataset=Dataset.from_list(eval_data) if eval_data else None,  # scored every eval_steps
        processing_class=tokenizer,
        data_collator=collator,
        peft_config=lora,
        callbacks=[RichProgress(), DescribeCheckpoint(metadata), *scale.callbacks()],
    )
    trainer.remove_callback(PrinterCallback)  # RichProgress reports the logs
    dealt = ""
    if balance_tokens and scale.processes > 1 and batching.mode == "packed":  # equal work per rank (balance.py)
        dealt = deal_by_tokens(trainer, [len(r["input_ids"]) for r in train_data])
    print_plan(trainer.model, report, train_data, args, prec,
               setup_lines(backend, liger_on, batching, len(train_data), prec, scale, [scale.note, fsdp_note, dealt]))

    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume_point(run_dir, resume))
    trainer.model.config.use_cache = True  # for sampling after training

    # 5. Artifacts: adapter + tokenizer + template + metadata, loss plot, run file.
    metadata["train"] = {"seconds": round(time.perf_counter() - started, 1), "steps": trainer.state.global_step,
                         "train_loss": output.training_loss, "examples": len(rows)}
    adapter_dir = save_outputs(trainer, tokenizer, run_dir, metadata, fsdp=scale.strategy == "fsdp")
    return TrainResult(run_dir, adapter_dir, trainer.model, tokenizer, trainer.state.log_history, metadata)


def resume_point(run_dir: Path, resume: bool) -> str | None:
    """The last complete checkpoint to resume from, or None for a fresh start (said aloud under --resume)."""
    from booktune.train.callbacks import last_complete_checkpoint

    if not resume:
        return None
    checkpoint = last_complete_checkpoint(run_dir / "checkpoints")
    console.print(f"resuming from {checkpoint}" if checkpoint else "[yellow]--resume: no complete checkpoint, "
                  "starting from scratch")
    return str(checkpoint) if checkpoint else None


def save_outputs(trainer: Any, tokenizer: Any, run_dir: Path, metadata: dict[str, Any], *, fsdp: bool) -> Path:
    """Adapter, loss plot and run file, written once (rank 0) after every rank has finished."""
    from booktune.train.artifacts import save_adapter, write_run_file
    from booktune.train.distributed import full_state_dict, is_main_process, wait_for_everyone
    from booktune.train.plot import plot_loss

    state = full_state_dict(trainer) if fsdp else None  # FSDP: gathered by every rank
    if is_main_process():
        save_adapter(trainer.model, tokenizer, run_dir, metadata, state_dict=state)
        plot_loss(trainer.state.log_history, run_dir / "loss.png")
        write_run_file(run_dir, metadata | {"log_history": trainer.state.log_history})
        console.print(f"adapter saved to [bold]{run_dir / 'adapter'}[/]")
    wait_for_everyone()  # no rank returns before the adapter is on disk
    return run_dir / "adapter"


@dataclass(frozen=True)
class Precision:
    device: str
    dtype: Any  # torch.dtype of the base weights and autocast
    load_in_4bit: bool
    gradient_checkpointing: bool
    offload_activations: bool = True  # Unsloth: checkpointed layer inputs wait in CPU memory (backends.py)

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")


def choose_precision(device: str | None, dtype: str, load_in_4bit: bool | None,
                     gradient_checkpointing: bool | None) -> Precision:
    """4-bit and checkpointing default on with CUDA and off on CPU, where they cost time and save nothing needed.
    Unsloth's activation offload starts on; scale_out decides it for the run (distributed.choose_offload)."""
    from booktune.model import pick_device, pick_dtype

    device = pick_device(device)
    on_gpu = device.startswith("cuda")
    four_bit = on_gpu if load_in_4bit is None else load_in_4bit
    if four_bit and not on_gpu:
        raise TrainError("config field train.load_in_4bit: 4-bit training needs a CUDA GPU; use --no-4bit on CPU")
    checkpointing = on_gpu if gradient_checkpointing is None else gradient_checkpointing
    return Precision(device, pick_dtype(dtype, device), four_bit, checkpointing)


def train_rows(data_dir: str | Path, tokenizer: Any, *, max_seq_length: int, truncation: str) -> tuple[list, Any]:
    """The train split as {'input_ids', 'labels'} rows within max_seq_length, and the truncation report."""
    from booktune.dataset import load_conversations, load_stats
    from booktune.dataset.tokenize import tokenize_records

    records = load_conversations(data_dir, "train")
    if not records:
        raise TrainError(f"{data_dir}: the train split is empty; prepare more text or lower prepare.eval_fraction")
    prompts = load_stats(data_dir).get("prompts", {})
    return tokenize_records(tokenizer, records, max_seq_length=max_seq_length, truncation=truncation,
                            system_prompt=prompts.get("system_prompt"), user_prompt=prompts.get("user_prompt"))


def sft_args(run_dir: Path, prec: Precision, *, epochs: float, max_steps: int, learning_rate: float,
             warmup_ratio: float, batch_size: int, grad_accum: int, logging_steps: int, save_steps: int,
             save_total_limit: int, seed: int, max_seq_length: int, eval_steps: int = 0,
             extra: dict[str, Any] | None = None) -> Any:
    from trl import SFTConfig

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "logs")  # transformers 5 reads the log dir from here
    extra = dict(extra or {})
    # 8-bit moments where bitsandbytes is loaded for the 4-bit base anyway; FSDP asks for torch's AdamW.
    optim = extra.pop("optim", "adamw_8bit" if prec.load_in_4bit else "adamw_torch")
    args = SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        warmup_steps=warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        lr_scheduler_type="cosine",
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        gradient_checkpointing=prec.gradient_checkpointing,
        bf16=str(prec.dtype) == "torch.bfloat16",
        fp16=str(prec.dtype) == "torch.float16",
        use_cpu=not prec.on_gpu,
        logging_steps=logging_steps,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps or None,
        per_device_eval_batch_size=batch_size,
        prediction_loss_only=True,  # keep no [B, T, vocab] logits around while scoring
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        seed=seed,
        data_seed=seed,
        report_to=["tensorboard"],
        disable_tqdm=True,
        optim=optim,
        max_length=max_seq_length,
        dataset_kwargs={"skip_prepare_dataset": True},  # rows carry booktune's labels already
        remove_unused_columns=False,
        **extra,  # DDP / FSDP settings (train/distributed.py)
    )
    return pin_single_card(args, prec.device)


def pin_single_card(args: Any, device: str) -> Any:
    """One process trains on one card, the one booktune chose (`--device cuda:K` or the largest).

    Left alone, transformers counts every visible card and picks cuda:0: on a machine with two cards it would wrap
    the model in nn.DataParallel, which TRL's SFTTrainer refuses (seen on 2 x H100), and with --device cuda:1 it
    would send the batches to the wrong card. Launched runs (torchrun / accelerate) already own one card each."""
    from booktune.train.distributed import world

    if not device.startswith("cuda") or world().distributed:
        return args
    import torch

    _ = args.device  # transformers' own device set-up runs once and is cached; then override its answer
    args.__dict__["_setup_devices"] = torch.device(device)
    args._n_gpu = 1
    torch.cuda.set_device(torch.device(device))
    return args


def setup_lines(backend: str, liger_on: bool, batching: Any, rows: int, prec: Precision, scale: Any,
                notes: list[str]) -> list[str]:
    """How the run trains: backend and kernels, batches, where Unsloth's checkpoints wait, the processes' notes."""
    kernels = " + Liger kernels" if liger_on else ""
    lines = [f"backend: {backend}{kernels}; batches: {batching.mode} ({batching.why}), {rows} rows"]
    if backend == "unsloth" and prec.gradient_checkpointing:
        where = "in CPU memory" if prec.offload_activations else "kept on the GPU"
        lines.append(scale.offload_note or f"checkpointed activations {where} (offload_activations)")  # note: why
    return lines + [f"{scale.processes} processes: {note}" for note in notes if note]


def print_plan(model: Any, report: Any, rows: list, args: Any, prec: Precision, setup: list[str]) -> None:
    """What is about to happen: parameters, examples, tokens lost to truncation, steps, and how it trains."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    steps = args.max_steps if args.max_steps > 0 else math.ceil(len(rows) / per_step * args.num_train_epochs)
    base = f"{'4-bit NF4 base, ' if prec.load_in_4bit else ''}{str(prec.dtype).removeprefix('torch.')}"
    console.print(f"[bold]training[/] on {prec.device} ({base})")
    console.print(f"  parameters: {trainable:,} trainable of {total:,} ({100 * trainable / max(total, 1):.2f}%)")
    for line in report.lines():
        console.print(f"  {line}")
    console.print(f"  optimizer steps: {steps} ({per_step} rows per step)")
    for line in setup:
        console.print(f"  {line}")
