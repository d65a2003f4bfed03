from pathlib import Path

import pytest

from booktune.config import SECTIONS, Config, ConfigError, build_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.*")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    assert isinstance(build_config(path), Config)


def test_default_toml_spells_out_the_defaults():
    assert build_config(ROOT / "configs" / "default.toml") == Config()


def test_flags_override_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  learning_rate: 0.001\n  lora_r: 8\n")
    cfg = build_config(f, {"lora_r": 4, "epochs": None})
    assert (cfg.train.learning_rate, cfg.train.lora_r, cfg.train.epochs) == (0.001, 4, 1.0)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[train]\nlearning_rate = -1\n", "train.learning_rate"),
        ("[train]\nlearnin_rate = 1\n", "train.learnin_rate: unknown field"),
        ("[prepare]\nchunk_words = 100\noverlap_words = 100\n", "overlap_words (100) must be smaller"),
        ("[train]\ntruncation = 'cut'\n", "train.truncation"),
        ("[train\n", "cannot parse"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        build_config(f)
    assert needle in str(e.value) and str(f) in str(e.value)
    assert "\n" not in str(e.value)


def test_field_names_are_unique_across_sections_and_documented():
    seen = set()
    for model in SECTIONS.values():
        for name, field in model.model_fields.items():
            assert name not in seen, name
            assert field.description, name
            seen.add(name)
