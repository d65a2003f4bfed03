"""`booktune export RUN`: a finished run as files other tools load.

    gguf / ollama   <name>-<quant>.gguf (the merged model), Modelfile, README.md (model card)
    merged          safetensors shards, config, tokenizer, chat template, generation_config.json, README.md
    lora-gguf       <name>-lora.gguf (the adapter alone, for llama.cpp's --lora), README.md

Everything is checked (the run is finished, the format and type are known, the folder is booktune's) before a file
is written. The export's own booktune.json is removed first and written last: its presence marks a finished
export. Each file appears whole under its name or not at all (files.atomic_path).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from booktune.config import GGUF_QUANTS, K_QUANTS, ChatConfig, ExportConfig
from booktune.console import console
from booktune.exporting.card import write_card
from booktune.exporting.errors import ExportError
from booktune.exporting.gguf_lora import write_lora_gguf
from booktune.exporting.gguf_model import write_gguf
from booktune.exporting.gguf_quant import llama_quantize
from booktune.exporting.merge import adapter_tokenizer, merge_adapter
from booktune.exporting.ollama import chat_pieces, go_template, ollama_create_command, write_modelfile
from booktune.outputs import Layout, OutputDir, reached
from booktune.runfolder import read_run, run_train_config
from booktune.version import __version__

EXPORT_FILE = "booktune.json"
EXPORT_LAYOUT = Layout("export", (), EXPORT_FILE)
SCRATCH = ".booktune-merged"  # the merged model a GGUF is written from, inside the export folder (same disk)
# The weight types each format takes; the first is the default.
TYPES = {"gguf": ("q8_0", *GGUF_QUANTS, *K_QUANTS), "ollama": ("q8_0", *GGUF_QUANTS, *K_QUANTS),
         "merged": ("bf16", "f16"), "lora-gguf": ("f32",)}


@dataclass
class ExportResult:
    out: Path
    format: str
    quant: str
    files: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # how to load it: ollama create, llama-cli, ...


@dataclass
class Source:
    """What an export is made from: the finished run, its training settings and its base model's folder."""

    run_dir: Path
    meta: dict[str, Any]
    base_dir: Path
    tokenizer: Any
    name: str

    @property
    def adapter_dir(self) -> Path:
        return self.run_dir / "adapter"


def export_run(run_dir: str | Path, out: str | Path | None, cfg: ExportConfig, chat: ChatConfig, *,
               overwrite: bool = False) -> ExportResult:
    """Export the finished run in `run_dir` as `cfg.format` into `out` (default RUN/export/<format>)."""
    run_dir = Path(run_dir)
    if cfg.format == "none":
        raise ExportError("format 'none': nothing to export; choose one of gguf, ollama, merged, lora-gguf")
    check_export(cfg)
    quant = pick_type(cfg.format, cfg.quant)
    source = load_source(run_dir)
    folder = open_export(run_dir, out, cfg.format, overwrite=overwrite)
    folder.remove(EXPORT_FILE)  # the completion marker goes first, and comes back last
    result = ExportResult(folder.path, cfg.format, quant)
    with console.status(f"exporting {escape(str(run_dir))} as {cfg.format} ({quant})"):
        WRITERS[cfg.format](folder, source, quant, chat, result)
    result.files.append(write_card(folder, source.meta, cfg.format, quant, result))
    reached("export:files")
    folder.write_json(EXPORT_FILE, {"booktune_version": __version__, "run": str(run_dir.resolve()),
                                    "format": cfg.format, "quant": quant,
                                    "files": [p.name for p in result.files]})
    if cfg.push_to_hub:
        push(folder.path, cfg.push_to_hub)
    for path in result.files:
        console.print(f"exported {escape(str(path))}")
    return result


def check_export(cfg: ExportConfig) -> None:
    """What `booktune run` checks before training: the export it will end with can be made here."""
    if cfg.format != "none":
        quant = pick_type(cfg.format, cfg.quant)
        if quant in K_QUANTS:
            llama_quantize(quant)


def pick_type(fmt: str, quant: str | None) -> str:
    """The weight type for `fmt`: `quant` when the format takes it, else its default; one line otherwise."""
    allowed = TYPES.get(fmt)
    if allowed is None:
        raise ExportError(f"format {fmt!r}: unknown; choose one of {', '.join(TYPES)}")
    if quant is None:
        return allowed[0]
    if quant.lower() not in allowed:
        raise ExportError(f"quant {quant!r}: not for format {fmt} (it takes {', '.join(dict.fromkeys(allowed))})")
    return quant.lower()


def load_source(run_dir: Path) -> Source:
    """The finished run (refused in one line when unfinished, or when its base would run its own code), its
    tokenizer and chat template (the adapter folder's), and a local folder of its base model's weights."""
    meta = read_run(run_dir)
    train = run_train_config(run_dir, meta, "export")
    tokenizer = adapter_tokenizer(run_dir / "adapter")
    return Source(run_dir, meta, base_folder(train.model), tokenizer, export_name(run_dir))


def base_folder(spec: str) -> Path:
    """A local folder holding the base model's safetensors: the embedded default's converted copy, the folder
    given, or a Hub model's snapshot (downloaded only because the run names a Hub model)."""
    from booktune.model import resolve_model

    source = resolve_model(spec)
    if not source.hub:
        return Path(source.path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.path, allow_patterns=["*.json", "*.safetensors", "*.model",
                                                                    "*.jinja", "*.txt"]))
    except Exception as e:  # noqa: BLE001 - network and Hub errors have many types; the message is what matters
        raise ExportError(f"{spec}: cannot fetch the base model's weights from the Hub: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def export_name(run_dir: Path) -> str:
    """A name for the exported model: the run folder's, or its parent's for `booktune run`'s OUT/run."""
    path = run_dir.resolve()
    name = path.parent.name if path.name == "run" else path.name
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "booktune"


def open_export(run_dir: Path, out: str | Path | None, fmt: str, *, overwrite: bool) -> OutputDir:
    """The export folder, checked before anything is written: `out`, or RUN/export/<format> through RUN's own
    manifest (so RUN's other entries stay as they are)."""
    if out is not None:
        return OutputDir.open(out, EXPORT_LAYOUT, overwrite=overwrite)
    from booktune.runfolder import RUN_LAYOUT

    run = OutputDir.open(run_dir, RUN_LAYOUT, overwrite=True)  # RUN is booktune's (read_run checked it)
    exports = run.subfolder("export", Layout("exports", tuple(TYPES)), overwrite=overwrite)
    return exports.subfolder(fmt, EXPORT_LAYOUT, overwrite=overwrite)


def write_merged(folder: OutputDir, source: Source, quant: str, chat: ChatConfig, result: ExportResult) -> None:
    """The merged checkpoint, built in a scratch folder inside the export folder and moved in file by file."""
    scratch = _merge_to_scratch(folder, source, "fp16" if quant == "f16" else "bf16")
    for path in sorted(scratch.iterdir()):
        target = folder.claim(path.name)
        os.replace(path, target)
        result.files.append(target)
    folder.remove(SCRATCH)
    result.commands.append(f'AutoModelForCausalLM.from_pretrained("{folder.path}")')


def write_model_gguf(folder: OutputDir, source: Source, quant: str, chat: ChatConfig, result: ExportResult) -> None:
    """One GGUF file of the merged model, and the Modelfile that gives Ollama its template, stops and system."""
    from booktune.template.messages import stop_token_ids

    stop_ids = stop_token_ids(source.tokenizer)
    # GGUF quantizes from fp32 weights: a 16-bit merge would round twice
    scratch = _merge_to_scratch(folder, source, "fp32")
    gguf_name = f"{source.name}-{quant}.gguf"
    result.files.append(write_gguf(scratch, folder.claim(gguf_name), quant=quant, stop_ids=stop_ids,
                                   name=source.name))
    folder.remove(SCRATCH)
    stops = [source.tokenizer.convert_ids_to_tokens(i) for i in stop_ids]
    system = source.meta.get("system_prompt") if chat.system_prompt is None else chat.system_prompt
    folder.claim("Modelfile")
    result.files.append(write_modelfile(folder.path, gguf_name, stops=stops, system=system,
                                        template=go_template(chat_pieces(source.tokenizer)),
                                        temperature=chat.temperature, top_p=chat.top_p,
                                        num_predict=chat.max_new_tokens))
    result.commands += [f"cd {folder.path} && {ollama_create_command(source.name)} && ollama run {source.name}",
                        f"llama-cli -m {folder.path / gguf_name} -cnv"]


def write_adapter_gguf(folder: OutputDir, source: Source, quant: str, chat: ChatConfig,
                       result: ExportResult) -> None:
    """The adapter alone, named for the tensors of the base model's GGUF."""
    name = f"{source.name}-lora.gguf"
    result.files.append(write_lora_gguf(source.adapter_dir, source.base_dir, folder.claim(name), name=source.name))
    result.commands.append(f"llama-server -m BASE.gguf --lora {folder.path / name}  "
                           f"(BASE.gguf: {source.meta.get('base_model')} as GGUF)")


def _merge_to_scratch(folder: OutputDir, source: Source, dtype: str) -> Path:
    from booktune.template.messages import stop_token_ids

    folder.remove(SCRATCH)  # left by an interrupted export
    scratch = folder.claim(SCRATCH)
    return merge_adapter(source.base_dir, source.adapter_dir, scratch, dtype=dtype,
                         stop_ids=stop_token_ids(source.tokenizer), tokenizer=source.tokenizer)


WRITERS = {"gguf": write_model_gguf, "ollama": write_model_gguf, "merged": write_merged,
           "lora-gguf": write_adapter_gguf}


def push(folder: Path, repo: str) -> None:
    """Upload the export folder to the Hub: the one network call of an export, made only when asked."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, ignore_patterns=[".booktune-*", SCRATCH + "/**"])
    except Exception as e:  # noqa: BLE001 - network and Hub errors have many types; the message is what matters
        raise ExportError(f"push to {repo}: {str(e).splitlines()[0] if str(e) else type(e).__name__} "
                          f"(the export itself is complete in {folder})") from None
    console.print(f"pushed {escape(str(folder))} to https://huggingface.co/{repo}")
