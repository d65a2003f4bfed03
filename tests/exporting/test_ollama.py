"""The Ollama Modelfile: FROM, TEMPLATE, SYSTEM, one stop per end-of-turn token, the chat sampling settings.

Ollama runs a Go template over `.System` and `.Messages`; there is no Go here, so `prompt` below spells out what
go_template's text does (the template text itself is checked for its pieces and structure). The check is that
this prompt, tokenized as llama.cpp would (special tokens parsed, BOS added where the tokenizer adds it), is the
very token sequence booktune generates from (render_prompt_ids), for every fixture chat template.
"""

from __future__ import annotations

import json
import re

import pytest

from booktune.exporting.errors import ExportError
from booktune.exporting.ollama import ChatPieces, chat_pieces, go_template, ollama_create_command, write_modelfile
from booktune.template.messages import render_prompt_ids, stop_token_ids
from tests.template.conftest import TEMPLATES, template_tokenizer  # noqa: F401

FIXTURES = sorted(p.name for p in TEMPLATES.glob("*.jinja")) or ["(fixtures absent)"]
SYSTEM = "You write like Thoreau."
CHAT = [{"role": "user", "content": "Where did you live?"}, {"role": "assistant", "content": "By the pond."},
        {"role": "user", "content": "What did you eat?"}]


def prompt(p: ChatPieces, system: str, messages: list[dict]) -> str:
    """What go_template's text produces for `.System` = system and `.Messages` = messages."""
    out = []
    for i, m in enumerate(messages):
        last = i == len(messages) - 1
        if m["role"] == "user":
            if i == 0:
                out.append(p.head_system + system + p.after_system if p.fold == "native" and system else p.head)
            folded = system and ((p.fold == "fold_first" and i == 0) or (p.fold == "fold_last" and last))
            out.append((system + "\n\n" if folded else "") + m["content"])
            out.append(p.generation if last else p.user_to_answer)
        else:
            out.append(m["content"] + ("" if last else p.answer_to_user))
    return "".join(out)


def modelfile_lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_modelfile_fields(tmp_path):
    path = write_modelfile(tmp_path, "walden.gguf", stops=["<|im_end|>", "<|im_end|>", "<|endoftext|>"],
                           system="You write like Thoreau.\nPlainly.", template="{{ .Prompt }}", temperature=0.7,
                           top_p=0.9, num_predict=256, adapter_file="walden-lora.gguf")
    text = path.read_text()
    assert text.startswith("FROM ./walden.gguf\nADAPTER ./walden-lora.gguf\n")
    assert 'SYSTEM """You write like Thoreau.\nPlainly."""\n' in text
    assert 'TEMPLATE "{{ .Prompt }}"\n' in text
    assert re.findall(r"^PARAMETER stop (.*)$", text, re.M) == ['"<|im_end|>"', '"<|endoftext|>"']
    assert "PARAMETER temperature 0.7\nPARAMETER top_p 0.9\nPARAMETER num_predict 256\n" in text
    assert ollama_create_command("walden") == "ollama create walden -f Modelfile"
    assert [p.name for p in tmp_path.iterdir()] == ["Modelfile"]  # no temp file left


def test_modelfile_refuses_text_it_cannot_quote(tmp_path):
    with pytest.raises(ExportError) as err:
        write_modelfile(tmp_path, "m.gguf", stops=[], system='He said """no"""', template=None,
                        temperature=0.7, top_p=0.9, num_predict=64)
    assert str(err.value).startswith("Modelfile SYSTEM:") and "\n" not in str(err.value)
    assert not (tmp_path / "Modelfile").exists()


def test_go_template_prints_every_piece_verbatim():
    pieces = ChatPieces(head_system="<s>[SYS]", after_system="[/SYS]\n", head="<s>", user_to_answer=' "quoted" ',
                        answer_to_user="</s>\n", generation="\n{{ not a directive }}\n", fold="native")
    text = go_template(pieces)
    for piece in (pieces.head_system, pieces.after_system, pieces.head, pieces.user_to_answer,
                  pieces.answer_to_user, pieces.generation):
        assert "{{ " + json.dumps(piece) + " }}" in text
    assert text.count("{{") == text.count("}}")
    opened = len(re.findall(r"\{\{-? ?(?:if|range)\b", text))
    assert opened == len(re.findall(r"\{\{-? ?end ?\}\}", text))
    assert '"""' not in text


@pytest.mark.parametrize("template", FIXTURES)
def test_modelfile_for_each_fixture_template(template, template_tokenizer, tmp_path):  # noqa: F811
    tok = template_tokenizer(template)
    stops = tok.convert_ids_to_tokens(stop_token_ids(tok))
    pieces = chat_pieces(tok)
    path = write_modelfile(tmp_path, "model.gguf", stops=stops, system=SYSTEM, template=go_template(pieces),
                           temperature=0.7, top_p=0.9, num_predict=256)
    lines = modelfile_lines(path)
    assert lines[0] == "FROM ./model.gguf"
    assert f'SYSTEM "{SYSTEM}"' in lines
    assert [line for line in lines if line.startswith("PARAMETER stop ")] == [f'PARAMETER stop "{s}"' for s in stops]
    assert any(line.startswith('TEMPLATE """') for line in lines)
    for system in (SYSTEM, ""):
        messages = ([{"role": "system", "content": system}] if system else []) + CHAT
        text = prompt(pieces, system, CHAT)
        adds_bos = tok.bos_token is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]
        ids = ([tok.bos_token_id] if adds_bos else []) + tok(text, add_special_tokens=False)["input_ids"]
        assert ids == render_prompt_ids(tok, messages), (template, system, text)
