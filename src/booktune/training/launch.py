"""`booktune train --gpus N|all`: start one training process per card, the way users would by hand.

The processes are started with `python -m torch.distributed.run` (what `accelerate launch --multi_gpu` runs
underneath; it also starts CPU processes with the gloo backend, which `accelerate launch --cpu` does not). The
strategy (DDP or FSDP) is set inside each process through TrainingArguments, so `accelerate launch`, `torchrun` and
`--gpus` train the same way; the equivalent `accelerate launch` command is printed for the user to reuse.

The resolved config goes to RUN/launch-config.json and the processes read it with --config: every setting travels,
and the printed command reproduces the run. The environment is passed on whole, so machine settings such as
NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1 and NVSHMEM_DISABLE_NVLS=1 reach every process.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from booktune.devices import Card, visible_cards, world
from booktune.training.scaleout import DistributedError, choose_cards, choose_strategy, parse_gpus

CONFIG_FILE = "launch-config.json"
KEPT_ENV = ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS")


@dataclass(frozen=True)
class Launch:
    argv: list[str]  # the command that runs
    env: dict[str, str]  # its whole environment
    shown: str  # the equivalent `accelerate launch` command (torchrun on CPUs), for the user
    processes: int
    note: str = ""  # why these cards / this strategy


def wants_launch(gpus: str | int | None, env: Mapping[str, str] | None = None) -> bool:
    """A launch was asked for and this process is not already one of a launched group."""
    env = os.environ if env is None else env
    return gpus not in (None, "") and "LOCAL_RANK" not in env and not world(env).distributed


def visible_devices(indices: tuple[int, ...], env: Mapping[str, str]) -> str:
    """CUDA_VISIBLE_DEVICES for the chosen ordinals, read through the parent's own CUDA_VISIBLE_DEVICES."""
    parent = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return ",".join(parent[i] if parent else str(i) for i in indices)


def booktune_args(data: Path, out: Path, config_file: Path, resume: bool, overwrite: bool = False) -> list[str]:
    return ["-m", "booktune", "train", str(data), "--out", str(out), "--config", str(config_file)] + (
        ["--resume"] if resume else []) + (["--overwrite"] if overwrite else [])


def build_launch(data: Path, out: Path, config_file: Path, *, processes: int, cards: tuple[int, ...] | None,
                 resume: bool, env: Mapping[str, str], note: str = "", overwrite: bool = False) -> Launch:
    """The torch.distributed.run command for `processes` ranks (on `cards`, or on CPUs when None)."""
    child_env = dict(env)
    child_env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, set here to keep it quiet
    args = booktune_args(data, out, config_file, resume, overwrite)
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    prefix = ""
    mode = ["--multi_gpu"] if processes > 1 else []
    if cards is not None:
        child_env["CUDA_VISIBLE_DEVICES"] = visible_devices(cards, env)
        prefix = f"CUDA_VISIBLE_DEVICES={child_env['CUDA_VISIBLE_DEVICES']} "
    kept = "".join(f"{k}={env[k]} " for k in KEPT_ENV if k in env)
    if cards is None:  # `accelerate launch --cpu` starts one process: torchrun is the equivalent here
        shown = ["torchrun", "--standalone", f"--nproc_per_node={processes}", *args]
    else:
        shown = ["accelerate", "launch", *mode, "--num_processes", str(processes), "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    return Launch(argv, child_env, kept + prefix + shlex.join(shown), processes, note)


def plan_launch(data: Path, out: Path, train: Any, *, resume: bool, env: Mapping[str, str],
                cards: list[Card] | None = None, overwrite: bool = False) -> tuple[Launch, dict[str, Any]]:
    """The launch for the TrainConfig `train`, and the train settings the processes must run with."""
    cards = visible_cards() if cards is None else cards
    on_cpu = str(train.device or "").startswith("cpu")
    if not on_cpu and not cards:
        raise DistributedError(f"config field train.gpus: {train.gpus} GPUs asked for, but no CUDA GPU is visible "
                               "(--device cpu starts CPU processes instead)")
    count = parse_gpus(train.gpus, 0 if on_cpu else len(cards))
    notes, indices = [], None
    if not on_cpu:
        choice = choose_cards(cards, count, train.distributed)
        indices, count = choice.indices, len(choice.indices)
        notes.append(choice.note)
    strategy, why = choose_strategy(train.distributed, processes=count, fits_one_card=fits(train, cards, indices))
    notes.append(why)
    settings = {"gpus": None, "distributed": strategy if strategy != "single" else train.distributed,
                "device": "cpu" if on_cpu else ("cuda" if count > 1 else f"cuda:{indices[0]}")}
    config_file = out / CONFIG_FILE
    launch = build_launch(data, out, config_file, processes=count, cards=indices, resume=resume, env=env,
                          note="; ".join(n for n in notes if n), overwrite=overwrite)
    return launch, settings


def fits(train: Any, cards: list[Card], indices: tuple[int, ...] | None) -> bool | None:
    """plan's verdict on whether the model trains on one of the chosen cards (None: no estimate)."""
    if not indices:
        return None
    from booktune.training.backends import planned
    from booktune.training.memory_split import fits_one_card

    return fits_one_card(train, planned(train.backend), min(c.memory for c in cards if c.index in indices))


def launch_training(data: str | Path, run: Any, cfg: Any, *, resume: bool, overwrite: bool = False) -> Any:
    """Write the run's config into RUN (an OutputDir), start the processes, wait, and return the finished run's
    TrainResult. The processes get --overwrite when this one did: RUN was checked here, with the same answer."""
    from rich.markup import escape

    from booktune.config import dump_config
    from booktune.console import console
    from booktune.runfolder import read_run
    from booktune.training.recipe import TrainError, TrainResult

    data, out = Path(data), run.path
    launch, settings = plan_launch(data, out, cfg.train, resume=resume, env=dict(os.environ), overwrite=overwrite)
    config = dump_config(cfg)
    config["train"].update(settings)
    run.write_json(CONFIG_FILE, config)
    if launch.note:
        console.print(f"[bold]launch:[/] {escape(launch.note)}")
    console.print(f"[bold]launching {launch.processes} processes[/]; the same as:\n  {escape(launch.shown)}",
                  soft_wrap=True)
    proc = subprocess.run(launch.argv, env=launch.env)
    if proc.returncode != 0:
        raise TrainError(f"{out}: the training processes failed (exit code {proc.returncode}); see their output "
                         "above, and rerun with --resume to continue from the last complete checkpoint")
    meta = read_run(out)
    return TrainResult(out, out / "adapter", None, None, meta.get("log_history", []), meta)
