"""render_preview / mask_summary, and the `booktune preview` command on a real data folder."""

from __future__ import annotations

import json

from booktune.template.labels import IGNORE, TokenizedExample, build_example
from booktune.template.preview import MASKED_STYLE, TRAINED_STYLE, mask_summary, render_preview

CONVERSATION = [
    {"role": "system", "content": "You write like Thoreau."},
    {"role": "user", "content": "Continue: The pond"},
    {"role": "assistant", "content": "was still, and I sat by it. Ünïcode 🦙 too."},
]


def test_rich_preview_colours_exactly_the_trained_text(template_tokenizer):
    tok = template_tokenizer("meta-llama-Llama-3.1-8B-Instruct.jinja")
    text = render_preview(tok, build_example(tok, CONVERSATION))
    trained = "".join(text.plain[s.start:s.end] for s in text.spans if s.style == TRAINED_STYLE)
    masked = "".join(text.plain[s.start:s.end] for s in text.spans if s.style == MASKED_STYLE)
    assert trained == "was still, and I sat by it. Ünïcode 🦙 too.<|eot_id|>"
    assert masked.startswith("<|begin_of_text|><|start_header_id|>system")  # special tokens shown literally
    assert masked.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_plain_preview_marks_trained_spans(template_tokenizer):
    tok = template_tokenizer("Qwen-Qwen2.5-7B-Instruct.jinja")
    plain = render_preview(tok, build_example(tok, CONVERSATION), plain=True)
    assert plain.endswith("<|im_start|>assistant\n[[was still, and I sat by it. Ünïcode 🦙 too.<|im_end|>]]\n")
    assert plain.count("[[") == 1


def test_mask_summary_counts(template_tokenizer):
    tok = template_tokenizer("Qwen-Qwen2.5-7B-Instruct.jinja")
    example = build_example(tok, CONVERSATION)
    masked = TokenizedExample(example.input_ids[:5], [IGNORE] * 5)
    trained = sum(label != IGNORE for label in example.labels)
    assert mask_summary([example, masked]) == {
        "examples": 2, "tokens": len(example.input_ids) + 5, "trained_tokens": trained, "fully_masked": 1,
        "longest": len(example.input_ids)}
    assert trained == len(tok("was still, and I sat by it. Ünïcode 🦙 too.")["input_ids"]) + 1


def test_preview_command(vocab, tmp_path):
    """`booktune preview DATA --model DIR --plain` on a data folder in the layout `booktune prepare` writes."""
    import typer
    from transformers import LlamaConfig
    from typer.testing import CliRunner

    from booktune.cli.preview import preview

    model_dir = tmp_path / "smollm2"
    vocab("smollm2").save_pretrained(str(model_dir))  # the default model's own tokenizer and ChatML template
    LlamaConfig().save_pretrained(str(model_dir))  # a model folder needs a config; preview reads no weights
    data = tmp_path / "data"
    data.mkdir()
    (data / "stats.json").write_text("{}", encoding="utf-8")
    rows = [{"id": f"walden-{i:05d}", "messages": CONVERSATION} for i in range(4)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    app = typer.Typer()
    app.command()(preview)
    result = CliRunner().invoke(app, [str(data), "--model", str(model_dir), "-n", "2", "--plain"])
    assert result.exit_code == 0, result.output
    assert result.output.count("[[was still, and I sat by it. Ünïcode 🦙 too.<|im_end|>]]") == 2
    assert "── walden-00001 (continue):" in result.output and "walden-00002" not in result.output
    assert "train: 4 examples" in result.output and "0 fully masked" in result.output
