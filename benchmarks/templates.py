"""Run booktune's loss masking over every chat template in one or more folders; print PASS/FAIL per template.

    python benchmarks/templates.py ../shared/fixtures/chat_templates tests/template/templates
    python benchmarks/templates.py TEMPLATES_DIR --tokenizer path/to/model_dir   # one real tokenizer for all

Each template gets a real byte-level vocab (default: ../shared/fixtures/tokenizers/ggml-vocab-gpt-2.gguf)
plus, as special tokens, the control tokens its own text names (`<|im_end|>`, `<start_of_turn>`, `[INST]`,
`<｜Assistant｜>`...) and bos/eos, as the template's real checkpoint has them. So this measures the masking,
not vocab coverage. A template PASSES when, for every probe conversation (with/without system prompt, 1-3
turns), build_example builds and verifies the labels (against the template's `{% generation %}` blocks too,
where it has them), each trained span decodes to answer + end marker, the generation prompt equals the
training prefix of the last answer, and unsloth_parts derives parts. Columns: how the system prompt is placed,
the empty tool variables the template is rendered with, whether it has generation blocks, the stop tokens,
and the tokens and time of one build_example call on a ~650-token example (fastest and median of 20).
"""

from __future__ import annotations

import argparse
import copy
import logging
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from booktune.template.generation import has_generation_blocks  # noqa: E402
from booktune.template.labels import IGNORE, build_example  # noqa: E402
from booktune.template.messages import render_prompt_ids, stop_token_ids, system_mode  # noqa: E402
from booktune.template.render import tool_kwargs  # noqa: E402
from booktune.template.unsloth import unsloth_parts  # noqa: E402

DEFAULT_VOCAB = ROOT / ".." / "shared" / "fixtures" / "tokenizers" / "ggml-vocab-gpt-2.gguf"
CONTROL = re.compile(r"<\|[^<>|\s]{1,60}\|>|<｜[^<>\n]{1,60}｜>|</?\|?[A-Za-z_][A-Za-z0-9_.-]{0,40}\|?>"
                     r"|\[/?[A-Za-z_]{3,30}\]|<seed:[a-z_]+>|\]~!?b[][]|\[e~\[")  # + Seed-OSS, MiniMax markers
SYSTEM = {"role": "system", "content": "You write like Henry David Thoreau."}
TURNS = [("Continue: The pond", "was still, and I sat by it until evening — “quiet” as ever."),
         ("And then?", "Then the loons came. 🦆 Ünïcode, too."), ("One more.", "Goodbye.")]


def probes() -> list[list[dict]]:
    def convo(n: int) -> list[dict]:
        return [m for q, a in TURNS[:n] for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]

    return [[SYSTEM, *convo(1)], [SYSTEM, *convo(2)], convo(3), convo(1)]


def tokenizer_for(template: str, base, name: str):
    tok = copy.deepcopy(base)
    names = set(CONTROL.findall(template)) - set(tok.get_vocab())
    tok.add_special_tokens({"bos_token": "<|bos|>", "eos_token": "<|eos|>",
                            "additional_special_tokens": sorted(names)})
    tok.chat_template = template
    tok.name_or_path = name  # refusals name the template they come from
    return tok


def check(tok) -> str:
    """'' when every probe passes, else the first problem."""
    for conversation in probes():
        example = build_example(tok, conversation, name=f"{len(conversation)}-message probe")
        spans, current = [], []
        for token, label in zip(example.input_ids, example.labels):
            if label != IGNORE:
                current.append(token)
            elif current:
                spans, current = spans + [current], []
        spans += [current] if current else []
        answers = [m["content"] for m in conversation if m["role"] == "assistant"]
        got = [tok.decode(s[:-1], clean_up_tokenization_spaces=False).strip() for s in spans]
        if got != answers:
            return f"trained spans {got!r} != answers"
        if conversation[-2]["role"] == "user":
            start = len(example.input_ids) - len(spans[-1]) - _tail(example)
            if render_prompt_ids(tok, conversation[:-1]) != example.input_ids[:start]:
                return "generation prompt differs from the training prefix"
    unsloth_parts(tok)
    return ""


def _tail(example) -> int:
    """Masked tokens after the last trained token (e.g. a trailing newline)."""
    n = 0
    for label in reversed(example.labels):
        if label != IGNORE:
            return n
        n += 1
    return n


def timing(tok, repeat: int = 20) -> tuple[int, float, float]:
    """Tokens, and the fastest and median milliseconds of one build_example call over `repeat` calls: on a shared
    machine the fastest is the cost of the call itself, the median what a busy machine gives."""
    text = " ".join(["The pond was still, and I sat by it until the evening light was gone."] * 34)
    conversation = [SYSTEM, {"role": "user", "content": "Continue: " + text[:200]},
                    {"role": "assistant", "content": text}]
    n = len(build_example(tok, conversation).input_ids)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        build_example(tok, conversation)
        times.append((time.perf_counter() - start) * 1000)
    return n, min(times), statistics.median(times)


def report(file: Path, base) -> bool:
    """Print one line for a template; True when it passes."""
    tok = tokenizer_for(file.read_text(encoding="utf-8"), base, file.name)
    try:
        problem = check(tok)
    except Exception as e:  # report every failure kind, keep going
        problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if problem:
        print(f"FAIL  {file.name}: {problem}")
        return False
    n, fastest, median = timing(tok)
    stops = ",".join(tok.convert_ids_to_tokens(stop_token_ids(tok)))
    tools = ",".join(f"{k}={v!r}" for k, v in tool_kwargs(tok).items()) or "-"
    generation = "yes" if has_generation_blocks(tok) else "-"
    print(f"PASS  {file.name:52s} {system_mode(tok):10s} {tools:15s} {generation:4s} {stops:31s} {n:4d} "
          f"{fastest:4.1f}/{median:4.1f}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of *.jinja chat templates")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_VOCAB, help="a .gguf vocab or a tokenizer folder")
    args = parser.parse_args()
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    logging.getLogger("booktune.template").setLevel(logging.ERROR)  # the per-template notices are columns here
    path = args.tokenizer
    base = (AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name) if path.suffix == ".gguf"
            else AutoTokenizer.from_pretrained(str(path)))
    templates = [file for folder in args.folders for file in sorted(folder.glob("*.jinja"))]
    print(f"      {'template':52s} {'system':10s} {'tools':15s} {'gen':4s} {'stops':31s} {'tok':>4s} ms min/median")
    passed = sum(report(file, base) for file in templates)
    print(f"{passed}/{len(templates)} templates pass")
    return 0 if passed == len(templates) else 1


if __name__ == "__main__":
    sys.exit(main())
