"""booktune's one typed config.

It loads from a TOML or YAML file (`--config`), is overridden by command-line flags, and is validated by pydantic
with errors that name the field. Each field's `description` is also its `--help` text. Stages never receive the
config object: the API unpacks it into plain function arguments.

File layout (every section and key optional):

    [prepare]
    chunk_words = 350
    [train]
    model = "default"
    learning_rate = 1e-3
    [eval]
    samples = 3
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_SYSTEM_PROMPT = (
    "You are {author}, the author of {title}. Write in {author}'s own voice, style and vocabulary."
)
DEFAULT_USER_PROMPT = "Continue this passage from {title} by {author}:\n\n{lead_in}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PrepareConfig(_Section):
    chunk_words: int = Field(350, ge=20, description="Target words per passage (the trained answer).")
    overlap_words: int = Field(
        50, ge=0, description="Words before each passage that the user turn quotes as its lead-in (never trained)."
    )
    eval_fraction: float = Field(
        0.1, ge=0.0, lt=0.9, description="Share of each book held out for evaluation, taken from its end."
    )
    eval_books: list[str] = Field(
        default_factory=list, description="Books held out whole for evaluation, by file name or stem."
    )
    system_prompt: str = Field(
        DEFAULT_SYSTEM_PROMPT, description="System prompt; {author} and {title} are filled in per book."
    )
    user_prompt: str = Field(
        DEFAULT_USER_PROMPT, description="User turn; {author}, {title} and {lead_in} are filled in."
    )
    workers: int | None = Field(None, ge=1, description="Processes for extraction (default: all cores).")
    password: str | None = Field(None, description="Password for encrypted PDFs.")
    ocr: bool = Field(False, description="OCR PDFs that have no text layer (needs Tesseract); never done unasked.")

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> "PrepareConfig":
        if self.overlap_words >= self.chunk_words:
            raise ValueError(
                f"overlap_words ({self.overlap_words}) must be smaller than chunk_words ({self.chunk_words})"
            )
        return self


class TrainConfig(_Section):
    model: str = Field(
        "default", description="Base model: 'default' (embedded SmolLM2-135M-Instruct), a local folder or a Hub id."
    )
    epochs: float = Field(1.0, gt=0, description="Passes over the training split.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate (AdamW, cosine decay).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of steps spent warming the learning rate up.")
    batch_size: int = Field(1, ge=1, description="Examples per device per step.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps per optimizer step.")
    max_seq_length: int = Field(1024, ge=32, description="Longest tokenized example, in tokens.")
    truncation: Literal["drop", "split"] = Field(
        "split", description="Over-long examples: 'drop' them or 'split' their passage at sentence ends."
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["all-linear"], description="Modules that get LoRA ('all-linear' or names)."
    )
    load_in_4bit: bool | None = Field(
        None, description="4-bit NF4 base via bitsandbytes (default: on with CUDA, off on CPU)."
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Compute dtype (auto: bf16 where the device supports it, else fp16 on GPU, fp32 on CPU)."
    )
    gradient_checkpointing: bool | None = Field(
        None, description="Recompute activations to save memory (default: on with CUDA, off on CPU)."
    )
    offload_activations: bool | None = Field(
        None, description="Unsloth: keep checkpointed activations in CPU memory (8B shape: 1.6 GiB less). Default: "
                          "on, but off under DDP where plan says they fit (8 % faster on 2 GPUs).",
    )
    logging_steps: int = Field(5, ge=1, description="Log the training loss every N steps.")
    eval_steps: int = Field(50, ge=0, description="Score the held-out split every N steps during training (0: never).")
    save_steps: int = Field(50, ge=1, description="Save a resumable checkpoint every N steps.")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    seed: int = Field(42, description="Random seed for LoRA init and data order.")
    device: str | None = Field(None, description="Device such as 'cuda:0' or 'cpu' (default: first GPU, else CPU).")
    trust_remote_code: bool = Field(False, description="Allow a Hub model's own Python code to run (off: safer).")
    backend: Literal["auto", "unsloth", "hf"] = Field(
        "auto", description="Training library: 'unsloth', 'hf' (transformers + PEFT + bitsandbytes), or 'auto' "
                            "(Unsloth when a CUDA GPU is present and it is installed, else hf).",
    )
    liger: Literal["auto", "on", "off"] = Field(
        "auto", description="Liger's fused Triton kernels (RMSNorm, SwiGLU, RoPE, loss) on the hf backend: 'auto' "
                            "uses them on a CUDA GPU when liger-kernel is installed.",
    )
    packing: bool = Field(
        True, description="Pack examples into max_seq_length rows, each attending only to itself "
                          "(off, or where isolation is unavailable: padded batches of similar length).",
    )
    gpus: str | None = Field(
        None, pattern=r"^(all|[1-9][0-9]*)$",
        description="Train with one process per GPU: a number or 'all'; launches them and prints the "
                    "`accelerate launch` command (default: this process only).",
    )
    distributed: Literal["auto", "ddp", "fsdp"] = Field(
        "auto", description="Across GPUs: 'ddp' (a model copy per GPU), 'fsdp' (weights sharded), or 'auto' "
                            "(DDP when the model fits one card, else FSDP).",
    )
    global_batch_size: int | None = Field(
        None, ge=1, description="Examples per optimizer step over all processes; sets grad_accum "
                                "(default: batch_size x grad_accum x processes).",
    )
    balance_tokens: bool = Field(
        True, description="Several processes: deal each step's packed rows to the ranks so each holds about the same "
                          "number of tokens (the step's rows stay the same).",
    )

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class EvalConfig(_Section):
    samples: int = Field(3, ge=0, description="Held-out prompts shown with base, tuned and real continuations.")
    voice_prompts: int = Field(
        16, ge=0, description="Held-out prompts continued by base and tuned model for the voice distance."
    )
    max_new_tokens: int = Field(120, ge=1, description="Tokens per sample continuation.")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature (0: greedy).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    eval_batch_size: int = Field(4, ge=1, description="Examples per forward pass in held-out loss.")
    eval_device: str | None = Field(
        None, description="Device for held-out loss and samples, e.g. 'cuda:1' (default: the training device)."
    )


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)


SECTIONS: dict[str, type[_Section]] = {"prepare": PrepareConfig, "train": TrainConfig, "eval": EvalConfig}


class ConfigError(ValueError):
    """A bad config file or value; the message names the file and field."""


def field_section(name: str) -> str:
    """The section a flat field name (as used by a CLI flag) belongs to."""
    for section, model in SECTIONS.items():
        if name in model.model_fields:
            return section
    raise KeyError(name)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{path}: unknown config format (use .toml, .yaml or .json)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot parse: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of sections at the top level")
    return data


def build_config(file: str | Path | Config | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults < config file (or a Config) < overrides. `overrides` maps flat field names to values (None: unset)."""
    if isinstance(file, Config):
        data: dict[str, Any] = file.model_dump()
        file = None
    else:
        data = read_config_file(file) if file else {}
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        try:
            section = field_section(name)
        except KeyError:
            raise ConfigError(f"unknown option {name!r}") from None
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{file}: [{section}] must be a table")
        data.setdefault(section, {})[name] = value
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, file)) from None


def format_validation_error(err: ValidationError, file: str | Path | None = None) -> str:
    """One line per problem: `file: section.field: message (got value)`."""
    where = f"{file}: " if file else ""
    lines = []
    for problem in err.errors():
        loc = ".".join(str(p) for p in problem["loc"])
        msg = problem["msg"].removeprefix("Value error, ")
        got = f" (got {problem['input']!r})" if problem["type"] != "missing" and "input" in problem else ""
        if problem["type"] == "extra_forbidden":
            msg, got = "unknown field", ""
        lines.append(f"{where}config field {loc}: {msg}{got}")
    return "; ".join(lines)


def dump_config(config: Config) -> dict[str, Any]:
    """A plain, JSON-serialisable view, with secrets blanked."""
    data = config.model_dump(mode="json")
    if data["prepare"].get("password"):
        data["prepare"]["password"] = "***"
    return data
