"""booktune's one typed config.

Each setting is defined once, here: a field with its type, bounds, default and description. The description is
also its `--help` text (cli/options.py makes one flag per field), the API takes the same names as keyword
overrides, and the stages read their section (`TrainConfig` for the training recipe, ...). The config loads from a
TOML, YAML or JSON file (`--config`), is overridden by flags, and is validated by pydantic with errors that name
the field.

File layout (every section and key optional):

    [prepare]
    chunk_words = 350
    [train]
    model = "default"
    learning_rate = 1e-3
    [eval]
    samples = 3
    [chat]
    temperature = 0.8
    [export]
    format = "gguf"
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from booktune.errors import BooktuneError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_SYSTEM_PROMPT = (
    "You are {author}, the author of {title}. Write in {author}'s own voice, style and vocabulary."
)
DEFAULT_USER_PROMPT = "Continue this passage from {title} by {author}:\n\n{lead_in}"
TASKS = ("continue", "answer")  # prepare.tasks: the kinds of training example each passage yields
QUESTION_WRITERS = ("auto", "keywords", "model", "file")  # prepare.question_writer: who writes the questions
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")  # train.report_to: what TRL's SFTConfig passes metrics to


def name_list(value: Any, known: tuple[str, ...], what: str, choices: str) -> Any:
    """A comma-separated field ('continue,answer'; a config file may give a list) as lower-case names without
    repeats, each one of `known`; a value of another type is left to the field's own type check."""
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    if not isinstance(value, str):
        return value
    names = list(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ValueError(f"unknown {what} {(unknown or [''])[0]!r} (use {choices})")
    return ",".join(names)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class PrepareConfig(_Section):
    chunk_words: int = Field(350, ge=20, le=100_000, description="Target words per passage (the trained answer).")
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
    tasks: str = Field(
        "continue,answer", description="What each passage trains, comma-separated: 'continue' (the user turn quotes "
                                       "the lead-in and asks for the passage) and 'answer' (the user turn is a "
                                       "question the passage answers; the answer is the passage, verbatim).",
    )
    question_writer: str = Field(
        "auto", description="Who writes the answer task's questions: 'keywords' (each passage's key phrases by "
                            "TF-IDF, no model), 'model' (a local chat model writes one per passage and scores it "
                            "1-5), 'file' (--questions-file); 'model,keywords' falls back to keywords when the model "
                            "cannot load. 'auto': 'model,keywords' on a CUDA GPU with a writer other than the "
                            "embedded default model, else 'keywords' (docs/quality.md says why).",
    )
    question_model: str | None = Field(
        None, description="Chat model of --question-writer model: a local folder or Hub id (default: the base model "
                          "being tuned); its own code runs only with --trust-remote-code.",
    )
    questions_file: str | None = Field(
        None, description="JSONL for --question-writer file, one {\"id\": passage id, \"question\": ...} per line "
                          "(ids as in train.jsonl and eval.jsonl of an earlier prepare).",
    )
    min_score: int = Field(
        4, ge=1, le=5, description="Model-written questions scored under this (1-5, by the writing model) are "
                                   "dropped: their passage trains the continuation task only.",
    )
    answer_prompt: str = Field(
        "{question}", description="User turn of the answer task; {question}, {author} and {title} are filled in.",
    )
    workers: int | None = Field(None, ge=1, description="Processes for extraction (default: all cores).")
    password: str | None = Field(None, description="Password for encrypted PDFs.")
    ocr: bool = Field(False, description="OCR PDFs that have no text layer (needs Tesseract); never done unasked.")

    @field_validator("tasks", "question_writer", mode="before")
    @classmethod
    def _names(cls, value: Any, info: Any) -> Any:
        known = TASKS if info.field_name == "tasks" else QUESTION_WRITERS
        names = name_list(value, known, "name", ", ".join(known))
        if info.field_name == "question_writer" and "," in str(names) and names != "model,keywords":
            raise ValueError("only 'model,keywords' names a fallback writer; 'auto' stands alone")
        return names

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> PrepareConfig:
        if self.overlap_words >= self.chunk_words:
            raise ValueError(
                f"overlap_words ({self.overlap_words}) must be smaller than chunk_words ({self.chunk_words})"
            )
        if self.question_writer == "file" and "answer" in self.tasks and not self.questions_file:
            raise ValueError("question_writer 'file' needs questions_file")
        return self


class TrainConfig(_Section):
    model: str = Field(
        "default", description="Base model: 'default' (embedded SmolLM2-135M-Instruct), a local folder or a Hub id."
    )
    epochs: float = Field(1.0, gt=0, le=1000, description="Passes over the training split.")
    max_steps: int = Field(-1, ge=-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Peak learning rate (AdamW). Default: by the model's size, and under 1B "
                                      "parameters by the tasks: 1.4e-3 when passages are trained as continuations "
                                      "and answers in one step (5e-4 with group_passages off), 1e-3 when once "
                                      "(measured on the 135M default, docs/quality.md); 2e-4 from 1B (the peers' "
                                      "LoRA starting point). `booktune plan` prints it.",
    )
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of steps spent warming the learning rate up.")
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="The learning rate after warmup: 'linear' decay to zero (as TRL and Unsloth), "
                              "'cosine' decay to zero, or 'constant'.",
    )
    batch_size: int = Field(1, ge=1, le=4096, description="Examples per device per step; with packing, rows of "
                                                          "max_seq_length tokens.")
    grad_accum: int = Field(1, ge=1, le=4096, description="Gradient accumulation steps per optimizer step.")
    max_seq_length: int = Field(1024, ge=32, le=1_048_576, description="Longest tokenized example, in tokens.")
    truncation: Literal["drop", "split"] = Field(
        "split", description="Over-long examples: 'drop' them or 'split' their passage at sentence ends."
    )
    lora_r: int = Field(16, ge=1, le=4096, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, le=65536, description="LoRA alpha (scale = alpha / r).")
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
        None, description="Keep checkpointed activations in CPU memory, on backends that can (unsloth): less GPU "
                          "memory, a little slower. Default: on, but off under DDP where plan says they fit.",
    )
    offload_embeddings: bool = Field(
        False, description="Keep the input embedding matrix in CPU memory, on backends that can (unsloth): each step "
                           "copies over only the rows it looks up. Saves GPU memory where the embeddings are not "
                           "tied to the output head.",
    )
    logging_steps: int = Field(5, ge=1, description="Log the training loss every N steps.")
    eval_steps: float = Field(
        0.5, ge=0, description="Score the held-out split during training every N steps, or, below 1, every such "
                               "fraction of the run's steps (0.5: halfway, and at the end of `booktune train`; "
                               "0: never).",
    )
    save_steps: int = Field(50, ge=1, description="Save a resumable checkpoint every N steps.")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    seed: int = Field(42, description="Random seed for LoRA init and data order.")
    device: str | None = Field(None, description="Device such as 'cuda:0' or 'cpu' (default, and for a plain "
                                                   "'cuda': the largest GPU, else CPU).")
    trust_remote_code: bool = Field(False, description="Allow a Hub model's own Python code to run (off: safer).")
    backend: str = Field(  # checked against the registry (training/backends/) before anything loads
        "auto", description="Training library: 'unsloth', 'hf' (transformers + PEFT + bitsandbytes), or 'auto' "
                            "(Unsloth when a CUDA GPU is present and it is installed, else hf).",
    )
    liger: Literal["auto", "on", "off"] = Field(
        "auto", description="Liger's fused Triton kernels (RMSNorm, SwiGLU, RoPE, loss) on the hf backend: 'auto' "
                            "uses them on a CUDA GPU when liger-kernel is installed.",
    )
    packing: bool = Field(
        True, description="Pack examples into max_seq_length rows, each attending only to itself; where a step's "
                          "rows run as one (Unsloth, varlen attention), into one row of batch_size x max_seq_length "
                          "(off, or where isolation is unavailable: padded batches of similar length).",
    )
    group_passages: bool = Field(
        True, description="Pack a passage's examples (its continuation and its answers) into one row, trained in "
                          "one step: the passage is learned once in both forms, not twice as in a second epoch. Such "
                          "a row may hold up to two examples of max_seq_length tokens.",
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
    report_to: str = Field(
        "tensorboard", description="Where training metrics go, comma-separated: tensorboard (RUN/logs, offline), "
                                   "wandb, mlflow, trackio, or none; each tracker's own settings apply. The loss plot "
                                   "is drawn either way.",
    )
    balance_tokens: bool = Field(
        True, description="Several processes: deal each step's packed rows to the ranks so each holds about the same "
                          "number of tokens (the step's rows stay the same).",
    )

    @field_validator("max_steps")
    @classmethod
    def _steps_or_all(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 steps trains nothing; use -1 for all epochs or a positive number")
        return value

    @field_validator("eval_steps")
    @classmethod
    def _steps_or_fraction(cls, value: float) -> float:
        # transformers reads a value below 1 as a fraction of max_steps and needs whole numbers above it
        if value >= 1 and value != int(value):
            raise ValueError("a whole number of steps, or a fraction of the run below 1 (e.g. 0.25)")
        return int(value) if value >= 1 or value == 0 else value

    @field_validator("report_to", mode="before")
    @classmethod
    def _trackers(cls, value: Any) -> Any:
        names = name_list(value, (*TRACKERS, "none"), "tracker", f"{', '.join(TRACKERS)} or none")
        if "none" in str(names).split(",") and "," in str(names):
            raise ValueError("'none' cannot be combined with a tracker")
        return names

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class EvalConfig(_Section):
    samples: int = Field(3, ge=0, description="Held-out prompts shown with base, tuned and real continuations.")
    voice_prompts: int = Field(
        16, ge=0, description="Held-out prompts continued by base and tuned model for the voice distance."
    )
    max_new_tokens: int = Field(120, ge=1, le=32768, description="Tokens per sample continuation.")
    answer_questions: int = Field(
        -1, ge=-1, description="Held-out questions answered by base and tuned model for the answers' voice, length "
                               "and attribution (-1: every one; 0: none)."
    )
    answer_tokens: int = Field(
        0, ge=0, le=32768, description="Longest free answer to a held-out question, in tokens (0: the author's "
                                       "longest passage among those compared, and a tenth more, so answers can run "
                                       "as long as the author's and end on their own).",
    )
    temperature: float = Field(0.8, ge=0, le=10, description="Sampling temperature (0: greedy).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    eval_batch_size: int = Field(4, ge=1, description="Examples per forward pass in held-out loss.")
    sample_batch_size: int = Field(
        0, ge=0, description="Held-out prompts sampled together, for base and tuned replies alike (0: 32; more is "
                             "faster where memory allows; another size draws other samples)."
    )
    eval_device: str | None = Field(
        None, description="Device for held-out loss and samples, e.g. 'cuda:1' (default: the training device)."
    )
    cache_base: bool = Field(
        True, description="Reuse the base model's held-out loss, continuations and answers from an earlier "
                          "evaluation with the same model, held-out examples, settings and software (kept in "
                          "booktune's cache folder); off: measure the base model again."
    )


class ChatConfig(_Section):
    system_prompt: str | None = Field(None, description="System prompt (default: the one the run trained with).")
    max_new_tokens: int = Field(300, ge=1, le=32768, description="Longest reply, in tokens.")
    temperature: float = Field(0.8, ge=0, le=10, description="Sampling temperature (0: greedy).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    device: str | None = Field(None, description="Device such as 'cuda:0' or 'cpu' (default, and for a plain "
                                                   "'cuda': the largest GPU, else CPU).")
    trust_remote_code: bool = Field(
        False, description="Allow the base model's own Python code to run; never taken from the run folder."
    )


GGUF_QUANTS = ("f16", "bf16", "q8_0", "q4_0")  # written by booktune itself, in numpy
K_QUANTS = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")  # llama-quantize


class ExportConfig(_Section):
    format: Literal["gguf", "ollama", "merged", "lora-gguf", "none"] = Field(
        "gguf", description="What to export: gguf (one GGUF file with a Modelfile beside it), ollama (the same "
        "files, for `ollama create`), merged (safetensors that transformers loads), lora-gguf (the adapter alone, "
        "for llama.cpp's --lora); none: `booktune run` exports nothing."
    )
    quant: str | None = Field(
        None, description="Weight type. GGUF: f16, bf16, q8_0 (default) or q4_0; K-quants (q4_k_m, ...) need "
        "llama.cpp's llama-quantize on PATH. merged: bf16 (default) or f16. lora-gguf keeps the adapter in f32."
    )
    push_to_hub: str | None = Field(
        None, description="Upload the export folder to this Hugging Face Hub repo (org/name) when it is written."
    )

    @field_validator("quant")
    @classmethod
    def _known_quant(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in (*GGUF_QUANTS, *K_QUANTS):
            raise ValueError(f"unknown type {v!r}; choose from {', '.join((*GGUF_QUANTS, *K_QUANTS))}")
        return None if v is None else v.lower()

    @field_validator("push_to_hub")
    @classmethod
    def _repo_id(cls, v: str | None) -> str | None:
        if v is not None and (v.count("/") != 1 or not all(v.split("/"))):
            raise ValueError(f"{v!r} is not a Hub repo id of the form 'org/name'")
        return v


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)


SECTIONS: dict[str, type[_Section]] = {"prepare": PrepareConfig, "train": TrainConfig, "eval": EvalConfig,
                                       "chat": ChatConfig, "export": ExportConfig}


class ConfigError(BooktuneError):
    """A bad config file or value; the message names the file and field."""


def field_section(name: str, sections: tuple[str, ...] = tuple(SECTIONS)) -> str:
    """The section among `sections` that a flat field name (as a CLI flag spells it) belongs to. A command's
    sections never share a field name (tests/test_config.py checks it), so the first match is the only one."""
    for section in sections:
        if name in SECTIONS[section].model_fields:
            return section
    raise KeyError(name)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
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


def build_config(file: str | Path | Config | dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                 sections: tuple[str, ...] = tuple(SECTIONS)) -> Config:
    """Defaults < config file (or a Config, or a dict laid out like a file: {"train": {...}, ...}) < overrides.
    `overrides` maps flat field names of `sections` (the ones a command takes) to values (None: unset)."""
    if isinstance(file, Config):
        data: dict[str, Any] = file.model_dump()
        file = None
    elif isinstance(file, dict):
        data = copy.deepcopy(file)
        file = None
    else:
        data = read_config_file(file) if file else {}
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        try:
            section = field_section(name, sections)
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
