"""`booktune doctor`: the versions, CUDA and the default model, as a bug report needs them."""

from importlib import metadata

from typer.testing import CliRunner

from booktune.cli import app


def doctor(env=None):
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200", **(env or {})})
    assert result.exit_code == 0, result.output
    return result.output


def test_doctor_prints_versions_cuda_and_the_default_model(default_tokenizer):
    import torch

    out = doctor()  # default_tokenizer converted the default model into the test cache
    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes"):
        assert f"\n{name} {metadata.version(name)}\n" in out
    try:
        assert f"\nunsloth {metadata.version('unsloth')}\n" in out
    except metadata.PackageNotFoundError:
        assert "\nunsloth not installed\n" in out
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()  # oneDNN's own answer for this host
    dtype = "bf16" if bf16 else "float32 (this CPU lacks AVX-512 and AMX)"
    assert (f"\nCPU: {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}; "
            f"CPU training runs in {dtype}\n") in out
    if torch.version.cuda is None:
        assert "CUDA: none (this torch is a CPU build)" in out
    else:
        assert f"CUDA {torch.version.cuda}: {torch.cuda.device_count()} card(s) visible" in out
        assert out.count(" GiB free of ") == torch.cuda.device_count()
    assert "default model: cached at " in out


def test_doctor_says_when_the_default_model_is_not_cached(tmp_path):
    out = doctor({"BOOKTUNE_CACHE": str(tmp_path / "empty")})
    assert f"default model: not cached yet; converted into {tmp_path / 'empty'}" in out
    assert f"base model evaluations kept: 0 (0.0 MB) in {tmp_path / 'empty' / 'eval'}" in out
    assert not (tmp_path / "empty").exists()  # doctor only looks


def test_doctor_counts_the_base_evaluations_kept(tmp_path):
    (tmp_path / "eval").mkdir()
    for name in ("loss-1.json", "replies-2.json"):
        (tmp_path / "eval" / name).write_text("x" * 250_000)
    assert f"base model evaluations kept: 2 (0.5 MB) in {tmp_path / 'eval'}" in doctor({"BOOKTUNE_CACHE": str(tmp_path)})


def test_doctor_says_which_dtype_a_cpu_trains_in():
    from booktune.checkup import describe, diagnose

    report = diagnose()
    for bf16, says in ((True, "CPU training runs in bf16"), (False, "CPU training runs in float32 (this CPU lacks AVX-512")):
        lines = describe({**report, "cpu": {"threads": 2, "instructions": "AVX2", "bf16": bf16}})
        assert any(line.startswith("CPU: 2 threads, AVX2; ") and says in line for line in lines)
