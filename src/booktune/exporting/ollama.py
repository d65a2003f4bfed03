"""An Ollama Modelfile beside the exported GGUF.

Ollama never runs the GGUF's Jinja chat template: `ollama create` compares `tokenizer.chat_template` with the
templates it ships (template.Named: Levenshtein distance under 100) and, when none is that close, falls back to
`{{ .Prompt }}` with no roles at all. booktune's templates are rendered with pinned dates and without thinking, and
fine-tunes often carry edited templates, so the Modelfile always holds a TEMPLATE: a Go template rebuilt from the
chat template's own output for a probe conversation, giving the same prompt text booktune trains and generates with.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from booktune.exporting.errors import ExportError
from booktune.exporting.files import atomic_path

_MARKS = {"system": "Qzx7SystemMark", "u1": "Qzx7UserOne", "a1": "Qzx7AnswerOne", "u2": "Qzx7UserTwo",
          "a2": "Qzx7AnswerTwo"}


@dataclass(frozen=True)
class ChatPieces:
    """The literal text a chat template puts around messages, cut from renders of a probe conversation.

    head_system / after_system: before and after the system prompt, up to the first user message (native mode);
    head: before the first user message when there is no system prompt; user_to_answer: after a user message that
    an answer follows; answer_to_user: after an answer, up to the next user message; generation: after the last user
    message, where the model's answer starts. `fold`: 'native', or where a template without a usable system role
    gets the system prompt ('fold_first' / 'fold_last' user turn, as booktune trains it)."""

    head_system: str
    after_system: str
    head: str
    user_to_answer: str
    answer_to_user: str
    generation: str
    fold: str


def chat_pieces(tokenizer: Any) -> ChatPieces:
    """Cut a tokenizer's chat template into ChatPieces, rendering as booktune trains (booktune.template)."""
    from booktune.template.messages import prepare_messages, system_mode
    from booktune.template.render import render

    m = _MARKS
    convo = [{"role": "user", "content": m["u1"]}, {"role": "assistant", "content": m["a1"]},
             {"role": "user", "content": m["u2"]}, {"role": "assistant", "content": m["a2"]}]
    fold = system_mode(tokenizer)
    plain = _strip_bos(tokenizer, render(tokenizer, prepare_messages(tokenizer, convo)))
    head, u2a, a2u, gen = _between(plain, ["", m["u1"], m["a1"], m["u2"], m["a2"]])
    head_system, after_system = "", ""
    if fold == "native":
        system = [{"role": "system", "content": m["system"]}]
        with_system = _strip_bos(tokenizer, render(tokenizer, prepare_messages(tokenizer, system + convo)))
        head_system, after_system = _between(with_system, ["", m["system"], m["u1"]])
    return ChatPieces(head_system, after_system, head, u2a, a2u, gen, fold)


def _between(text: str, marks: list[str]) -> list[str]:
    """The text between consecutive marks ('' = the start), each mark found exactly once, in order."""
    pieces, pos = [], 0
    for before, after in itertools.pairwise(marks):
        if text.count(after) != 1:
            raise ExportError(f"chat template: cannot rebuild it for Ollama (a probe message shows up "
                              f"{text.count(after)} times)")
        end = text.index(after)
        start = pos + len(before) if before else 0
        if end < start:
            raise ExportError("chat template: cannot rebuild it for Ollama (it reorders messages)")
        pieces.append(text[start:end])
        pos = end
    return pieces


def _strip_bos(tokenizer: Any, text: str) -> str:
    """llama.cpp (and so Ollama) adds BOS itself when the tokenizer does; a BOS in the template text would double it."""
    bos = getattr(tokenizer, "bos_token", None)
    adds_bos = bos is not None and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]
    return text[len(bos):] if adds_bos and text.startswith(bos) else text


def go_template(pieces: ChatPieces) -> str:
    """The Ollama TEMPLATE (Go text/template over .System and .Messages) that reproduces the pieces. Literal text
    is written as quoted Go strings, so no whitespace trimming can touch it."""
    q = _go_string
    content = "{{ $m.Content }}"
    if pieces.fold != "native":
        where = "(eq $i 0)" if pieces.fold == "fold_first" else "$last"
        content = f'{{{{ if and {where} $.System }}}}{{{{ $.System }}}}{q(chr(10) * 2)}{{{{ end }}}}{content}'
    head = (f"{{{{ if $.System }}}}{q(pieces.head_system)}{{{{ $.System }}}}{q(pieces.after_system)}"
            f"{{{{ else }}}}{q(pieces.head)}{{{{ end }}}}") if pieces.fold == "native" else q(pieces.head)
    return "\n".join([
        "{{- range $i, $m := .Messages }}",
        "{{- $last := eq (len (slice $.Messages $i)) 1 }}",
        '{{- if eq $m.Role "user" }}',
        f"{{{{- if eq $i 0 }}}}{head}{{{{ end }}}}",
        "{{-" + content[2:],
        f"{{{{- if $last }}}}{q(pieces.generation)}{{{{ else }}}}{q(pieces.user_to_answer)}{{{{ end }}}}",
        '{{- else if eq $m.Role "assistant" }}',
        f"{{{{- $m.Content }}}}{{{{ if not $last }}}}{q(pieces.answer_to_user)}{{{{ end }}}}",
        "{{- end }}",
        "{{- end }}",
    ])


def _go_string(text: str) -> str:
    """`text` as a Go template action printing it verbatim (JSON string escapes are valid Go string escapes)."""
    return "{{ " + json.dumps(text, ensure_ascii=False) + " }}" if text else ""


def write_modelfile(out_dir: str | Path, gguf_file: str, *, stops: Sequence[str], system: str | None,
                    template: str | None, temperature: float, top_p: float, num_predict: int,
                    adapter_file: str | None = None) -> Path:
    """Write `out_dir/Modelfile` for the GGUF `gguf_file` (a file name inside `out_dir`), atomically."""
    lines = [f"FROM ./{gguf_file}"]
    if adapter_file:
        lines.append(f"ADAPTER ./{adapter_file}")
    if template:
        lines.append(f"TEMPLATE {_quoted(template, 'TEMPLATE')}")
    if system:
        lines.append(f"SYSTEM {_quoted(system, 'SYSTEM')}")
    lines += [f"PARAMETER stop {_quoted(s, 'stop')}" for s in dict.fromkeys(stops)]
    lines += [f"PARAMETER temperature {temperature:g}", f"PARAMETER top_p {top_p:g}",
              f"PARAMETER num_predict {int(num_predict)}"]
    path = Path(out_dir) / "Modelfile"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _quoted(value: str, field: str) -> str:
    """A Modelfile value: "..." when that is unambiguous, else the multi-line \"\"\"...\"\"\" form."""
    if '"""' in value or value.endswith('"'):
        raise ExportError(f"Modelfile {field}: {value[:40]!r} holds quotes a Modelfile cannot carry")
    if "\n" in value or '"' in value or value != value.strip():
        return f'"""{value}"""'
    return f'"{value}"'


def ollama_create_command(name: str, modelfile: str = "Modelfile") -> str:
    """The line a README shows to load the export into Ollama (run in the export folder)."""
    return f"ollama create {name} -f {modelfile}"
