"""DATA's conversations load in other trainers: TRL's own conversational loading, a LLaMA-Factory dataset entry and
an Axolotl datasets snippet, written beside the JSONL files."""

from __future__ import annotations

import json

import yaml

from booktune.dataset import load_conversations
from booktune.dataset.build import DATA_LAYOUT


def test_trl_loads_train_jsonl_as_conversations_and_renders_what_booktune_trains(tiny_data_dir, tiny_model_dir):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from trl.data_utils import is_conversational

    from booktune.template import build_example

    rows = load_dataset("json", data_files=str(tiny_data_dir / "train.jsonl"), split="train")
    assert is_conversational(rows[0])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    args = SFTConfig(output_dir=str(tiny_data_dir.parent / "trl-out"), max_steps=1, report_to="none",
                     use_cpu=True, max_length=None, assistant_only_loss=False)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args,
                         train_dataset=rows.select(range(4)), processing_class=tokenizer)
    ours = build_example(tokenizer, rows[0]["messages"], name=rows[0]["id"]).input_ids
    theirs = trainer.train_dataset[0]["input_ids"]
    assert theirs[: len(ours)] == ours  # TRL renders the same conversation through the same chat template
    assert rows[0]["messages"][-1]["content"][:200] in tokenizer.decode(theirs)


def test_llama_factory_entries_describe_the_jsonl_files(tiny_data_dir):
    info = json.loads((tiny_data_dir / "dataset_info.json").read_text())
    assert set(info) == {"booktune_train", "booktune_eval"}
    for split in ("train", "eval"):
        entry = info[f"booktune_{split}"]
        assert (entry["file_name"], entry["formatting"]) == (f"{split}.jsonl", "sharegpt")
        tags, column = entry["tags"], entry["columns"]["messages"]
        roles = {tags["system_tag"], tags["user_tag"], tags["assistant_tag"]}
        for row in load_conversations(tiny_data_dir, split):
            for message in row[column]:
                assert message[tags["role_tag"]] in roles and message[tags["content_tag"]]


def test_axolotl_snippet_names_the_jsonl_files_and_the_messages_field(tiny_data_dir):
    snippet = yaml.safe_load((tiny_data_dir / "axolotl.yaml").read_text())
    for key, split in (("datasets", "train"), ("test_datasets", "eval")):
        (entry,) = snippet[key]
        assert (entry["type"], entry["field_messages"], entry["ds_type"]) == ("chat_template", "messages", "json")
        assert entry["path"] == str(tiny_data_dir / f"{split}.jsonl")
        assert load_conversations(tiny_data_dir, split)[0][entry["field_messages"]][-1]["role"] == "assistant"


def test_interop_files_are_booktunes_own(tiny_data_dir):
    manifest = json.loads((tiny_data_dir / ".booktune-manifest.json").read_text())
    assert {"dataset_info.json", "axolotl.yaml"} <= set(manifest["entries"]) & set(DATA_LAYOUT.names)
