"""Run booktune's loss masking over every chat template in a folder; print PASS/FAIL per template.

    python benchmarks/templates.py ../shared/fixtures/chat_templates
    python benchmarks/templates.py TEMPLATES_DIR --tokenizer path/to/model_dir   # one real tokenizer for all

Each template gets a real byte-level vocab (default: ../shared/fixtures/tokenizers/ggml-vocab-gpt-2.gguf)
plus, as special tokens, the control tokens its own text names (`<|im_end|>`, `<start_of_turn>`, `[INST]`,
`<｜Assistant｜>`...) and bos/eos, as the template's real checkpoint has them. So this measures the masking,
not vocab coverage. A template PASSES when, for every probe conversation (with/without system prompt, 1-3
turns), build_example builds and verifies the labels, each trained span decodes to answer + end marker,
the generation prompt equals the training prefix of the last answer, and unsloth_parts derives parts.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from booktune.chat.masking import IGNORE, build_example  # noqa: E402
from booktune.chat.template import render_prompt_ids, stop_token_ids, system_mode  # noqa: E402
from booktune.chat.unsloth import unsloth_parts  # noqa: E402

DEFAULT_VOCAB = ROOT / ".." / "shared" / "fixtures" / "tokenizers" / "ggml-vocab-gpt-2.gguf"
CONTROL = re.compile(r"<\|[^<>|\s]{1,60}\|>|<｜[^<>\n]{1,60}｜>|</?\|?[A-Za-z_][A-Za-z0-9_.-]{0,40}\|?>"
                     r"|\[/?[A-Za-z_]{3,30}\]")
SYSTEM = {"role": "system", "content": "You write like Henry David Thoreau."}
TURNS = [("Continue: The pond", "was still, and I sat by it until evening — “quiet” as ever."),
         ("And then?", "Then the loons came. 🦆 Ünïcode, too."), ("One more.", "Goodbye.")]


def probes() -> list[list[dict]]:
    def convo(n: int) -> list[dict]:
        return [m for q, a in TURNS[:n] for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]

    return [[SYSTEM, *convo(1)], [SYSTEM, *convo(2)], convo(3), convo(1)]


def tokenizer_for(template: str, base):
    tok = copy.deepcopy(base)
    names = set(CONTROL.findall(template)) - set(tok.get_vocab())
    tok.add_special_tokens({"bos_token": "<|bos|>", "eos_token": "<|eos|>",
                            "additional_special_tokens": sorted(names)})
    tok.chat_template = template
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


def timing(tok, repeat: int = 20) -> tuple[int, float]:
    text = " ".join(["The pond was still, and I sat by it until the evening light was gone."] * 34)
    conversation = [SYSTEM, {"role": "user", "content": "Continue: " + text[:200]},
                    {"role": "assistant", "content": text}]
    n = len(build_example(tok, conversation).input_ids)
    start = time.perf_counter()
    for _ in range(repeat):
        build_example(tok, conversation)
    return n, (time.perf_counter() - start) / repeat * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of *.jinja chat templates")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_VOCAB, help="a .gguf vocab or a tokenizer folder")
    args = parser.parse_args()
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = args.tokenizer
    base = (AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name) if path.suffix == ".gguf"
            else AutoTokenizer.from_pretrained(str(path)))
    templates = sorted(args.folder.glob("*.jinja"))
    passed = 0
    for file in templates:
        tok = tokenizer_for(file.read_text(encoding="utf-8"), base)
        try:
            problem = check(tok)
        except Exception as e:  # report every failure kind, keep going
            problem = f"{type(e).__name__}: {e}"
        if problem:
            print(f"FAIL  {file.name}: {problem}")
            continue
        passed += 1
        n, ms = timing(tok)
        stops = ",".join(tok.convert_ids_to_tokens(stop_token_ids(tok)))
        print(f"PASS  {file.name:45s} system={system_mode(tok):10s} stops={stops:28s} {n} tokens {ms:.1f} ms")
    print(f"{passed}/{len(templates)} templates pass")
    return 0 if passed == len(templates) else 1


if __name__ == "__main__":
    sys.exit(main())
