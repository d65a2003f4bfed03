"""The training recipe: a prepared DATA folder in, a LoRA adapter in RUN out. Reads top to bottom.

Features
- LoRA (PEFT) on a 4-bit NF4 base (bitsandbytes) by default on CUDA; bf16 or fp32 base on CPU.
- Loss on assistant tokens only, end-of-turn token included: labels come from `booktune.template.build_example`,
  the one labelling function, and TRL's collator uses them as they are (dataset preparation is skipped).
- Over-long examples are split at sentence ends or dropped (`truncation`), never trained with their end cut off.
- Examples packed into rows, each attending only to itself; a passage's continuation and answer share a row, and
  so a step (`group_passages`, packing.py).
- TRL's SFTTrainer runs the loop: checkpoints every `save_steps`, `resume=True` continues from the last complete one,
  loss to TensorBoard (RUN/logs) and to RUN/loss.png, a rich progress bar.
- The training library is a backend (training/backends/): Unsloth or transformers + PEFT + bitsandbytes.
- RUN describes itself: adapter, tokenizer, chat template, config and booktune version (see runfolder.py).
- Several processes (torchrun / accelerate / `gpus`): DDP or FSDP (scaleout.py), and each step's packed rows
  dealt to the ranks by token count, the step's rows unchanged (`balance_tokens`, balance.py).

`build_trainer` is the one place a trainer is made: `train_adapter` calls it on DATA's rows, and every benchmark
calls it on its own rows, so what is measured is what booktune runs.

Failure modes it reports before spending compute
- DATA is not a prepared folder, or its train split is empty                       -> DataError
- every example is longer than max_seq_length or fully masked                      -> TruncationError
- a chat template whose answer spans cannot be located                             -> MaskingError
- 4-bit asked for without CUDA                                                     -> DeviceError
- `resume=True` with no complete checkpoint starts from scratch, and says so.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.markup import escape

from booktune.config import Config, TrainConfig, dump_config
from booktune.console import console, quiet_libraries
from booktune.devices import (
    Precision,
    choose_precision,
    dtype_note,
    is_main_process,
    pick_device,
    silence_other_ranks,
    wait_for_everyone,
    world,
)
from booktune.errors import BooktuneError
from booktune.outputs import OutputDir, reached
from booktune.training.backends import Backend, BackendError, LoraSettings, resolve
from booktune.training.rate import rate_line, with_learning_rate
from booktune.training.scaleout import ScaleOut, early_strategy, full_state_dict, scale_out

# The schedule after warmup, in transformers' names: warmup_ratio applies to each.
SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


class TrainError(BooktuneError):
    """A training run that cannot go on; the message names the run folder or the field."""


@dataclass
class TrainResult:
    run_dir: Path
    adapter_dir: Path
    model: Any  # the PeftModel, still in memory, for evaluation and samples
    tokenizer: Any
    log_history: list[dict[str, Any]]
    metadata: dict[str, Any]


@dataclass
class Setup:
    """A trainer ready to run, and how it was set up (for the plan printed before training)."""

    trainer: Any
    backend: Backend
    prec: Precision
    scale: ScaleOut
    batching: Any
    kernels: bool  # Liger's fused kernels
    rows: list[dict[str, Any]]  # the training rows as batched (packed rows when packing)
    notes: list[str] = field(default_factory=list)


def train_adapter(data_dir: str | Path, run: OutputDir, config: Config, *, resume: bool = False,
                  base_model: Any = None, tokenizer: Any = None, held_rows: list[dict[str, Any]] | None = None,
                  scored_after: bool = False) -> TrainResult:
    """Train a LoRA adapter on DATA's train split and save it in RUN (opened by runfolder.open_run, which checked
    it). `base_model`/`tokenizer` reuse loaded ones (a base model must come from the backend that trains it:
    `Backend.load_base`), `held_rows` the held-out split already tokenized by `tokenizer` (dataset.rows).
    `scored_after`: the caller scores the finished adapter on the held-out split itself, so the trainer's own
    evaluation at the last step is skipped."""
    # 0. The backend first: Unsloth patches transformers, TRL and PEFT when imported.
    backend, backend_note = resolve(config.train.backend, pick_device(config.train.device),
                                    early_strategy(config.train.distributed))
    quiet_libraries()  # before the imports below, some of which speak on import (bitsandbytes on a CPU)
    check_trackers(config.train.report_to)
    # The learning rate by the model's size and DATA's tasks unless set, resolved once here: the run file records
    # the value used.
    t, rate_why = with_learning_rate(config.train, data_dir=data_dir)
    config = config.model_copy(update={"train": t})
    from transformers import set_seed

    from booktune.dataset.io import check_data_dir
    from booktune.dataset.rows import heldout_rows, train_rows, trained_prompts
    from booktune.model import load_tokenizer
    from booktune.runfolder import RUN_FILE, run_metadata
    from booktune.training.callbacks import DescribeCheckpoint, NoClosingEval, StopOnNonFinite

    silence_other_ranks()  # under torchrun / accelerate launch only rank 0 prints and writes
    run_dir = run.path
    set_seed(t.seed)

    # 1. Data: conversations -> input_ids + labels, by the one labelling function.
    check_data_dir(data_dir)  # before any model loads: a wrong folder should fail in a second
    tokenizer = tokenizer or load_tokenizer(t.model, trust_remote_code=t.trust_remote_code)
    rows, report = train_rows(data_dir, tokenizer, max_seq_length=t.max_seq_length, truncation=t.truncation)
    if held_rows is None and t.eval_steps:
        held_rows = heldout_rows(data_dir, tokenizer, max_seq_length=t.max_seq_length, truncation=t.truncation)
    held = held_rows if t.eval_steps else []

    # 2. The trainer: precision, scale-out, model + LoRA, batches, TRL's SFTTrainer (build_trainer).
    metadata = run_metadata(base_model=t.model, data_dir=str(data_dir), config=dump_config(config))
    metadata["tokens"] = report.__dict__ | {"dropped_ids": report.dropped_ids[:20]}
    metadata |= trained_prompts(data_dir)  # `booktune chat` starts from the system prompt the run trained with
    for name in ("checkpoints", "logs"):  # made by the Trainer and TensorBoard, from the trainer's creation on
        run.claim(name)
    setup = build_trainer(t, run_dir, rows, held, tokenizer, backend=backend, base_model=base_model,
                          callbacks=[DescribeCheckpoint(metadata), StopOnNonFinite(),
                                     *([NoClosingEval()] if scored_after else [])], notes=[backend_note])
    print_plan(setup, report, rate_why)

    # 3. The loop. The run's completion marker goes first: from here on a kill leaves a run that is not finished.
    start = resume_point(run_dir, resume, metadata["config"])
    run.remove(RUN_FILE)
    reached("train:marker-removed")
    started = time.perf_counter()
    if start and checkpoint_step(start) >= planned_steps(setup.trainer.args, len(setup.rows)):
        finished_from(setup.trainer, Path(start))  # the Trainer would take one more step than asked
    else:
        setup.trainer.train(resume_from_checkpoint=start)
    setup.trainer.model.config.use_cache = True  # for sampling after training

    # 4. Artifacts: adapter + tokenizer + template + metadata, loss plot, and the run file last.
    trainer = setup.trainer
    metadata["train"] = {"seconds": round(time.perf_counter() - started, 1), "steps": trainer.state.global_step,
                         "train_loss": mean_loss(trainer.state.log_history), "examples": len(rows)}
    adapter_dir = save_outputs(trainer, tokenizer, run, metadata, fsdp=setup.scale.strategy == "fsdp")
    return TrainResult(run_dir, adapter_dir, trainer.model, tokenizer, trainer.state.log_history, metadata)


def check_trackers(report_to: str) -> None:
    """Every tracker in train.report_to is installed: one line naming it before any model loads."""
    import importlib.util

    missing = [n for n in report_to.split(",") if n != "none" and importlib.util.find_spec(n) is None]
    if missing:
        raise TrainError(f"config field train.report_to: {missing[0]} is not installed; run `pip install "
                         f"{missing[0]}` or choose another tracker")


def build_trainer(t: TrainConfig, run_dir: Path, rows: list[dict[str, Any]], held: list[dict[str, Any]],
                  tokenizer: Any, *, backend: Backend, base_model: Any = None, callbacks: list[Any] = (),
                  notes: list[str] = ()) -> Setup:
    """The SFTTrainer for `rows` ({'input_ids', 'labels'}) under the settings `t`, with `held` scored every
    eval_steps. `backend` comes from backends.resolve (so Unsloth is imported before anything it patches)."""
    from datasets import Dataset
    from transformers import PrinterCallback

    from booktune.training.balance import deal_by_tokens
    from booktune.training.callbacks import RichProgress
    from booktune.training.packing import training_batches
    from booktune.training.trainer import sft_trainer_class

    t = with_learning_rate(t)[0]  # callers other than train_adapter (benchmarks) may leave it to the model's size
    # Precision and device: 4-bit NF4 base on CUDA unless turned off; bf16 where supported.
    prec = choose_precision(t.device, t.dtype, t.load_in_4bit, t.gradient_checkpointing)
    # Launched on several processes: DDP or FSDP, and accumulation that keeps the global batch (scaleout.py).
    scale = scale_out(t, device=prec.device, backend=backend)
    prec = replace(prec, offload_activations=scale.offload_activations,  # on, but not under DDP where it fits
                   offload_embeddings=t.offload_embeddings)
    if t.offload_embeddings and not backend.offloads_embeddings:
        raise BackendError(f"config field train.offload_embeddings: the {backend.name} backend keeps the embeddings "
                           "on the GPU; use --backend unsloth or --no-offload-embeddings")
    kernels = backend.kernels(t.liger, prec.device)  # Liger's fused kernels, where the backend runs them

    # Model and LoRA: Unsloth builds its PeftModel itself; for hf, TRL wraps the base (and prepares 4-bit).
    load_prec = replace(prec, device=scale.load_device(prec.device))
    model = base_model if base_model is not None else backend.load_base(
        t.model, load_prec, max_seq_length=t.max_seq_length, trust_remote_code=t.trust_remote_code)
    model, lora = backend.add_lora(model, LoraSettings.from_config(t), load_prec, packing=t.packing)
    model.config.use_cache = False  # a KV cache would turn packed-sequence isolation off; restored after training

    # Batches: packed rows, each example attending only to itself, or padded to a few lengths (packing.py).
    batching = backend.batching(model, t.packing)
    backend.isolate(model, batching)  # per-example masks where the model's own would let examples mix
    train_data, collator = training_batches(rows, batching, max_len=t.max_seq_length,
                                            pad_token_id=tokenizer.pad_token_id, batch_size=t.batch_size,
                                            group=t.group_passages)
    eval_data = training_batches(held, batching, max_len=t.max_seq_length, pad_token_id=tokenizer.pad_token_id)[0]

    # The loop's settings: TRL's SFTTrainer on pre-tokenized rows (its own preparation is skipped: our labels stand).
    args = sft_args(run_dir, prec, t, grad_accum=scale.grad_accum, eval_steps=t.eval_steps if eval_data else 0,
                    extra=scale.trainer_args(prec.gradient_checkpointing)
                    | {"train_sampling_strategy": batching.sampling, "use_liger_kernel": kernels},
                    rows_per_step=batching.rows_per_step(t.batch_size))
    # Under autocast (bf16/fp16) PEFT's float32 cast of every LoRA input is a bit-exact round trip (trainer.py);
    # FSDP casts weights itself.
    as_is = backend.peft_lora_layers and (args.bf16 or args.fp16) and scale.strategy != "fsdp"
    trainer = sft_trainer_class(lora_inputs_as_is=as_is)(
        model=model, args=args, train_dataset=Dataset.from_list(train_data),
        eval_dataset=Dataset.from_list(eval_data) if eval_data else None,  # scored every eval_steps
        processing_class=tokenizer, data_collator=collator, peft_config=lora,
        callbacks=[RichProgress(), *callbacks, *scale.callbacks()],
    )
    trainer.remove_callback(PrinterCallback)  # RichProgress reports the logs
    dealt = ""
    if t.balance_tokens and scale.processes > 1 and batching.mode == "packed":  # equal work per rank (balance.py)
        dealt = deal_by_tokens(trainer, [len(r["input_ids"]) for r in train_data])
    return Setup(trainer, backend, prec, scale, batching, kernels, train_data, [*notes, scale.note, dealt])


def resume_point(run_dir: Path, resume: bool, config: dict[str, Any]) -> str | None:
    """The last complete checkpoint to resume from, or None for a fresh start (said aloud under --resume). A
    checkpoint made with other LoRA settings is refused in one line (runfolder.check_resumable)."""
    from booktune.runfolder import check_resumable, last_complete_checkpoint

    if not resume:
        return None
    checkpoint = last_complete_checkpoint(run_dir / "checkpoints")
    if checkpoint is not None:
        check_resumable(checkpoint, config)
    console.print(f"resuming from {escape(str(checkpoint))}" if checkpoint else
                  "[yellow]--resume: no complete checkpoint, starting from scratch")
    return str(checkpoint) if checkpoint else None


def planned_steps(args: Any, rows: int) -> int:
    """The optimizer steps the Trainer will run over `rows` batched rows (its own arithmetic, in advance)."""
    if args.max_steps > 0:
        return args.max_steps
    batches = math.ceil(math.ceil(rows / args.world_size) / args.per_device_train_batch_size)
    accum = args.gradient_accumulation_steps
    return math.ceil(args.num_train_epochs * max(batches // accum + int(batches % accum > 0), 1))


def checkpoint_step(checkpoint: str | Path) -> int:
    return int(Path(checkpoint).name.rpartition("-")[2])


def finished_from(trainer: Any, checkpoint: Path) -> None:
    """A resume from a checkpoint already at the last step: its weights and log become the run's, untrained."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    set_peft_model_state_dict(trainer.model, load_file(checkpoint / "adapter_model.safetensors"))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    console.print(f"{escape(str(checkpoint))} is already at the last step: nothing left to train")


def mean_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The mean of the logged training losses: over the whole run, also after a resume (the Trainer's own
    training_loss divides the loss since the resume by every step)."""
    losses = [e["loss"] for e in log_history if "loss" in e]
    return sum(losses) / len(losses) if losses else next(
        (e["train_loss"] for e in reversed(log_history) if "train_loss" in e), None)


def save_outputs(trainer: Any, tokenizer: Any, run: OutputDir, metadata: dict[str, Any], *, fsdp: bool) -> Path:
    """Adapter, loss plot and run file, written once (rank 0) after every rank has finished, the run file last."""
    from booktune.runfolder import save_adapter, write_run_file
    from booktune.training.callbacks import check_finite_weights
    from booktune.training.plot import plot_loss

    check_finite_weights(trainer.model, trainer.state.global_step)
    state = full_state_dict(trainer) if fsdp else None  # FSDP: gathered by every rank
    if is_main_process():
        save_adapter(trainer.model, tokenizer, run, metadata, state_dict=state)
        reached("train:adapter")
        plot_loss(trainer.state.log_history, run.claim("loss.png"))
        write_run_file(run, metadata | {"log_history": trainer.state.log_history})
        console.print(f"adapter saved to [bold]{escape(str(run.path / 'adapter'))}[/]")
    wait_for_everyone()  # no rank returns before the adapter is on disk
    return run.path / "adapter"


def sft_args(run_dir: Path, prec: Precision, t: TrainConfig, *, grad_accum: int, eval_steps: float = 0,
             extra: dict[str, Any] | None = None, rows_per_step: int = 0) -> Any:
    """TRL's SFTConfig for `t` on `prec`; `extra` carries the DDP / FSDP settings (scaleout.trainer_args);
    `rows_per_step`: dataset rows a step takes, when not `t.batch_size` (Batching.rows_per_step)."""
    from trl import SFTConfig

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "logs")  # transformers 5 reads the log dir from here
    extra = dict(extra or {})
    # 8-bit moments where bitsandbytes is loaded for the 4-bit base anyway; FSDP asks for torch's AdamW.
    optim = extra.pop("optim", "adamw_8bit" if prec.load_in_4bit else "adamw_torch")
    args = SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        lr_scheduler_type=SCHEDULERS[t.lr_scheduler],
        per_device_train_batch_size=rows_per_step or t.batch_size,
        gradient_accumulation_steps=grad_accum,
        gradient_checkpointing=prec.gradient_checkpointing,
        bf16=str(prec.dtype) == "torch.bfloat16",
        fp16=str(prec.dtype) == "torch.float16",
        use_cpu=not prec.on_gpu,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps or None,
        per_device_eval_batch_size=t.batch_size,
        prediction_loss_only=True,  # keep no [B, T, vocab] logits around while scoring
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none" if t.report_to == "none" else t.report_to.split(","),
        disable_tqdm=True,
        optim=optim,
        max_length=t.max_seq_length,
        dataset_kwargs={"skip_prepare_dataset": True},  # rows carry booktune's labels already
        remove_unused_columns=False,
        **extra,
    )
    return pin_single_card(args, prec.device)


def pin_single_card(args: Any, device: str) -> Any:
    """One process trains on one card, the one booktune chose (`--device cuda:K` or the largest).

    Left alone, transformers counts every visible card and picks cuda:0: on a machine with two cards it would wrap
    the model in nn.DataParallel, which TRL's SFTTrainer refuses, and with --device cuda:1 it would send the
    batches to the wrong card. Launched runs (torchrun / accelerate) already own one card each."""
    if not device.startswith("cuda") or world().distributed:
        return args
    import torch

    _ = args.device  # transformers' own device set-up runs once and is cached; then override its answer
    args.__dict__["_setup_devices"] = torch.device(device)
    args._n_gpu = 1
    torch.cuda.set_device(torch.device(device))
    return args


def setup_lines(setup: Setup) -> list[str]:
    """How the run trains: backend and kernels, batches, where checkpointed activations wait, the processes' notes."""
    kernels = " + Liger kernels" if setup.kernels else ""
    b = setup.batching
    lines = [f"backend: {setup.backend.name}{kernels}; batches: {b.mode} ({b.why}), {len(setup.rows)} rows"]
    if setup.backend.offloads_activations and setup.prec.gradient_checkpointing:
        where = "in CPU memory" if setup.prec.offload_activations else "kept on the GPU"
        lines.append(setup.scale.offload_note or f"checkpointed activations {where} (offload_activations)")
    return lines + [f"{setup.scale.processes} processes: {note}" for note in setup.notes if note]


def print_plan(setup: Setup, report: Any, rate_why: str = "set") -> None:
    """What is about to happen: parameters, examples, tokens lost to truncation, steps, the learning rate and where
    it comes from, and how it trains."""
    model, args, prec = setup.trainer.model, setup.trainer.args, setup.prec
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    steps = planned_steps(args, len(setup.rows))
    base = f"{'4-bit NF4 base, ' if prec.load_in_4bit else ''}{str(prec.dtype).removeprefix('torch.')}"
    why = dtype_note(prec.device, prec.dtype)
    console.print(f"[bold]training[/] on {prec.device} ({base}{': ' + why if why else ''})")
    console.print(f"  parameters: {trainable:,} trainable of {total:,} ({100 * trainable / max(total, 1):.2f}%)")
    for line in report.lines():
        console.print(f"  {line}")
    console.print(f"  optimizer steps: {steps} ({per_step} rows per step)")
    console.print(f"  {rate_line(args, rate_why)}", markup=False)
    for line in setup_lines(setup):
        console.print(f"  {line}")
