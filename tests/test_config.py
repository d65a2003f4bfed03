from pathlib import Path

import pytest

from booktune import api
from booktune.config import SECTIONS, Config, ConfigError, TrainConfig, build_config

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
        ("[train]\neval_steps = 2.5\n", "train.eval_steps: a whole number of steps, or a fraction of the run below 1"),
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


@pytest.mark.parametrize("command", sorted(api.SECTIONS))
def test_each_commands_field_names_are_unique_and_documented(command):
    """A command's flags are the fields of its sections, so no two of them may share a name."""
    seen = set()
    for section in api.SECTIONS[command]:
        for name, field in SECTIONS[section].model_fields.items():
            assert name not in seen, name
            assert field.description, name
            seen.add(name)


@pytest.mark.parametrize("given, kept", [("tensorboard", "tensorboard"), (" WandB, tensorboard,wandb", "wandb,tensorboard"),
                                         (["mlflow", "trackio"], "mlflow,trackio"), ("none", "none")])
def test_report_to_takes_trackers_comma_separated(given, kept):
    assert build_config(None, {"report_to": given}).train.report_to == kept


@pytest.mark.parametrize("given, needle", [("tensorbord", "unknown tracker 'tensorbord'"), ("", "unknown tracker ''"),
                                           ("none,wandb", "'none' cannot be combined")])
def test_report_to_refuses_unknown_trackers_in_one_line(given, needle):
    with pytest.raises(ConfigError) as e:
        build_config(None, {"report_to": given})
    assert needle in str(e.value) and "train.report_to" in str(e.value)


def test_a_tracker_that_is_not_installed_is_named_before_training():
    import importlib.util

    from booktune.training.recipe import TrainError, check_trackers

    missing = next((n for n in ("wandb", "mlflow", "trackio") if importlib.util.find_spec(n) is None), None)
    if missing is None:
        pytest.skip("every tracker is installed here")
    with pytest.raises(TrainError, match=f"train.report_to: {missing} is not installed"):
        check_trackers(f"tensorboard,{missing}")
    check_trackers("tensorboard")
    check_trackers("none")


@pytest.mark.parametrize("values, needle", [
    ({"tasks": "continue,summarise"}, "unknown name 'summarise'"),
    ({"question_writer": "keywords,model"}, "only 'model,keywords' names a fallback"),
    ({"question_writer": "auto,keywords"}, "'auto' stands alone"),
    ({"question_writer": "file"}, "question_writer 'file' needs questions_file"),
    ({"min_score": 6}, "prepare.min_score"),
])
def test_answer_task_settings_are_checked(values, needle):
    with pytest.raises(ConfigError, match=needle):
        build_config(None, values, ("prepare",))


def test_task_lists_read_as_comma_separated_names():
    p = build_config({"prepare": {"tasks": ["answer", "continue"], "question_writer": "Model, keywords"}}).prepare
    assert (p.tasks, p.question_writer) == ("answer,continue", "model,keywords")


@pytest.mark.parametrize("given, kept", [(0.5, 0.5), (50, 50), (50.0, 50), (0, 0)])
def test_eval_steps_are_steps_or_a_fraction_of_the_run(given, kept):
    value = TrainConfig(eval_steps=given).eval_steps
    assert value == kept and type(value) is type(kept)
