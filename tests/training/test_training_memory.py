"""`booktune plan`: memory predictions from configs alone, for the three benchmark shapes built here."""

from __future__ import annotations

import pytest
from transformers import GptOssConfig, LlamaConfig
from typer.testing import CliRunner

from booktune.config import TrainConfig
from booktune.training import memory
from booktune.training.backends import REGISTRY
from booktune.training.backends.base import BackendError
from booktune.training.memory import GIB, Shape, describe, largest, lora_params, predict

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]

LLAMA_8B = dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False)
LLAMA_1B = dict(hidden_size=2048, num_hidden_layers=16, intermediate_size=8192, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, head_dim=64)
GPT_OSS_20B = dict(num_hidden_layers=24, num_local_experts=32, num_experts_per_tok=4, vocab_size=201088,
                   hidden_size=2880, intermediate_size=2880, head_dim=64, num_attention_heads=64,
                   num_key_value_heads=8, sliding_window=128, tie_word_embeddings=False)


def run(batch: int, seq: int, backend: str = "unsloth", **fields) -> tuple[TrainConfig, object]:
    """The training settings and the backend the memory plan is asked about."""
    return TrainConfig(batch_size=batch, max_seq_length=seq, **fields), REGISTRY[backend]


def shape(kind: str) -> Shape:
    return Shape.from_config(GptOssConfig(**GPT_OSS_20B) if kind == "gpt_oss" else
                             LlamaConfig(**(LLAMA_8B if kind == "8b" else LLAMA_1B)))


def test_shapes_from_configs_count_the_known_parameters():
    assert shape("8b").params() == pytest.approx(8.03e9, rel=0.002)  # Llama-3.1-8B without norms
    assert shape("1b").params() == pytest.approx(1.236e9, rel=0.002)
    # 20,914,757,184 in all; biases, router, norms and sinks (9.2M) are not counted here
    assert shape("gpt_oss").params() == pytest.approx(20_914_757_184 - 9.2e6, rel=1e-4)


def test_lora_counts_match_peft_and_unsloth():
    # Unsloth's 92,454,912 trainable parameters at r8 on GPT-OSS-20B (attention + fused experts), measured
    assert lora_params(shape("gpt_oss"), *run(1, 2048, lora_r=8)) == 92_454_912
    assert lora_params(shape("gpt_oss"), *run(1, 2048, lora_r=8, target_modules=ATTENTION)) == 3_981_312
    assert lora_params(shape("8b"), *run(1, 2048, lora_r=16)) == 41_943_040  # PEFT all-linear on Llama-3.1-8B


def test_hf_backend_keeps_moe_experts_in_bf16():
    unsloth = predict(shape("gpt_oss"), *run(1, 2048, lora_r=8))
    hf = predict(shape("gpt_oss"), *run(1, 2048, "hf", lora_r=8))
    assert unsloth.experts_quantized and not hf.experts_quantized
    assert 11 * GIB < unsloth.weights < 12.5 * GIB  # NF4 experts: about 11.7 GiB (shared/notes/gpt-oss.md)
    assert 37 * GIB < hf.weights < 39 * GIB  # experts bf16: about 38.1 GiB
    text = "\n".join(describe(shape("gpt_oss"), *run(1, 2048, "hf", lora_r=8), 24 * GIB))
    assert "does NOT fit" in text and "--backend unsloth" in text
    assert "fits" in "\n".join(describe(shape("gpt_oss"), *run(1, 2048, lora_r=8), 24 * GIB))


def test_dense_models_are_the_same_on_both_backends_but_for_offloaded_checkpoints():
    unsloth, hf = predict(shape("8b"), *run(4, 2048)), predict(shape("8b"), *run(4, 2048, "hf"))
    assert unsloth.weights == hf.weights and unsloth.activations < hf.activations
    assert 5 * GIB < unsloth.weights < 6 * GIB  # NF4 Linears + bf16 embeddings and head


@pytest.mark.parametrize("kind", ["8b", "1b", "gpt_oss"])
def test_largest_batch_and_sequence_are_the_boundary(kind):
    (s, backend), card = run(1, 2048), 24 * GIB

    def total(**change) -> float:
        return predict(shape(kind), s.model_copy(update=change), backend).total

    best = largest(shape(kind), s, backend, card, "batch_size")
    assert best >= 1
    assert total(batch_size=best) <= card < total(batch_size=best + 1)
    seq = largest(shape(kind), s, backend, card, "max_seq_length")
    assert total(max_seq_length=seq) <= card
    assert seq == 131072 or total(max_seq_length=seq + 256) > card  # 131072: the search's cap


def test_plan_command_reads_only_the_config(tmp_path):
    from booktune.cli import app

    GptOssConfig(**GPT_OSS_20B).save_pretrained(tmp_path)  # config.json only, no weights
    runner = CliRunner()
    result = runner.invoke(app, ["plan", "--model", str(tmp_path), "--max-seq-length", "2048", "--batch-size", "1",
                                 "--gpu-mem", "24", "--backend", "hf", "--lora-r", "8"])
    assert result.exit_code == 0, result.output
    assert "20.91B parameters" in result.output and "does NOT fit" in result.output
    LlamaConfig(**LLAMA_8B).save_pretrained(tmp_path / "8b")
    on, off = (" ".join(runner.invoke(app, ["plan", "--model", str(tmp_path / "8b"), "--batch-size", "4",
                                            "--max-seq-length", "2048", "--gpu-mem", "24", "--backend", "unsloth",
                                            *flag]).output.split())  # rich wraps lines
               for flag in ([], ["--no-offload-activations"]))
    assert "with --no-offload-activations this run" in on and "--no-offload-activations" not in off
    assert "peak allocated 7.3 GiB" in on and "peak allocated 9.2 GiB" in off
    result = runner.invoke(app, ["plan", "--model", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "error" in result.output and "Traceback" not in result.output


# Peaks measured on an H100 (docs/benchmarks.md "Memory plan"): (shape, backend, batch, lora_r, expert LoRA, GiB),
# each example packed on its own (group_passages off): every step at most batch x 2048 tokens.
# The two Llama rows fitted LAYER_WORK / MLP_WORK; the GPT-OSS rows (shared/notes/gpt-oss.md §6) did not.
# Then Unsloth with its checkpoints kept on the GPU (offload_activations off, measured on an H200), and the 8B rows
# again on an H200 with each step packed as one full row and Unsloth on booktune's varlen kernel.
MEASURED = [("8b", "unsloth", 4, 16, True, 7.41), ("8b", "hf", 4, 16, True, 9.37), ("1b", "unsloth", 4, 16, True, 1.95),
            ("gpt_oss", "unsloth", 1, 8, True, 13.9), ("gpt_oss", "unsloth", 1, 8, False, 13.0),
            ("8b", "unsloth-kept", 4, 16, True, 9.05), ("8b", "unsloth", 4, 16, True, 7.36),
            ("8b", "hf", 4, 16, True, 9.45)]
# GPT-OSS-20B packed under booktune's per-example masks (H200): batch 1 and 2, with the input embedding in CPU memory
# or not (offload_embeddings), LoRA on attention and experts or on attention alone.
MEASURED_OSS = [(1, False, True, 13.88), (2, False, True, 14.19), (1, True, True, 12.81), (2, True, True, 13.11),
                (2, True, False, 12.20), (2, False, False, 13.28)]


@pytest.mark.parametrize("kind,backend,batch,r,experts,gib", MEASURED)
def test_predictions_are_within_15_percent_of_measured_peaks(kind, backend, batch, r, experts, gib):
    settings = run(batch, 2048, backend.removesuffix("-kept"), lora_r=r, target_modules=["all-linear"] if experts
                   else ATTENTION, offload_activations=not backend.endswith("-kept"), group_passages=False)
    assert predict(shape(kind), *settings).allocated / GIB == pytest.approx(gib, rel=0.15)


@pytest.mark.parametrize("batch,offloaded,experts,gib", MEASURED_OSS)
def test_gpt_oss_predictions_are_within_15_percent_of_packed_peaks(batch, offloaded, experts, gib):
    settings = run(batch, 2048, lora_r=8, offload_embeddings=offloaded, group_passages=False,
                   target_modules=["all-linear"] if experts else ATTENTION)
    assert predict(shape("gpt_oss"), *settings).allocated / GIB == pytest.approx(gib, rel=0.15)


def test_a_passages_examples_in_one_row_are_planned_as_a_step_of_two_rows():
    grouped, backend = run(1, 2048)
    apart = grouped.model_copy(update={"group_passages": False})
    two = apart.model_copy(update={"batch_size": 2})
    assert memory.step_tokens(grouped) == (4096, 4096) and memory.step_tokens(apart) == (2048, 2048)
    assert predict(shape("8b"), grouped, backend).activations == predict(shape("8b"), two, backend).activations
    # From batch 2 a step's row already holds both examples: no more than without grouping.
    four = run(4, 2048)[0]
    assert predict(shape("8b"), four, backend).total == predict(
        shape("8b"), four.model_copy(update={"group_passages": False}), backend).total
    assert predict(shape("8b"), grouped.model_copy(update={"packing": False}), backend).total == predict(
        shape("8b"), apart, backend).total
    lines = describe(shape("8b"), grouped, backend, 24 * GIB)
    assert "a passage's examples in one row: up to 4096 tokens" in lines[0]
    assert "in one row" not in describe(shape("8b"), apart, backend, 24 * GIB)[0]


def test_kept_checkpoints_cost_30_layer_inputs_and_plan_says_so():
    kept = predict(shape("8b"), *run(4, 2048, offload_activations=False))
    offloaded = predict(shape("8b"), *run(4, 2048))
    assert kept.activations - offloaded.activations == 30 * 4 * 2048 * 4096 * 2  # 30 of 32 layer inputs, bf16
    assert kept.activations == predict(shape("8b"), *run(4, 2048, "hf")).activations  # hf keeps them all
    lines = "\n".join(describe(shape("8b"), *run(4, 2048), 24 * GIB))
    assert f"--no-offload-activations this run would need {kept.total / GIB:.1f} GiB: fits" in lines
    assert "does NOT fit" in "\n".join(describe(shape("8b"), *run(4, 2048), 9 * GIB)).splitlines()[-2]
    assert "offload" not in "\n".join(describe(shape("8b"), *run(4, 2048, "hf"), 24 * GIB))


def test_offloaded_embeddings_leave_one_table_on_the_gpu_where_the_backend_can():
    kept, moved = (predict(shape("gpt_oss"), *run(1, 2048, lora_r=8, offload_embeddings=on)) for on in (False, True))
    assert kept.weights - moved.weights == 201088 * 2880 * 2  # the bf16 input embedding
    hf = [predict(shape("gpt_oss"), *run(1, 2048, "hf", lora_r=8, offload_embeddings=on)).weights
          for on in (False, True)]
    assert hf[0] == hf[1]  # the hf backend cannot: recipe.build_trainer refuses the setting there
    tied = [predict(shape("1b"), *run(4, 2048, offload_embeddings=on)).weights for on in (False, True)]
    assert tied[0] == tied[1]  # one table serves as embedding and head: nothing to move
    said = "\n".join(describe(shape("gpt_oss"), *run(1, 2048, lora_r=8), 14 * GIB))  # does not fit: say the way out
    assert f"--offload-embeddings (input embedding in CPU memory, slower steps) this run would need " \
           f"{moved.total / GIB:.1f} GiB" in said
    assert "--offload-embeddings" not in "\n".join(describe(shape("gpt_oss"), *run(1, 2048, lora_r=8), 24 * GIB))


def test_an_moe_run_too_big_is_told_what_lora_on_attention_alone_would_need():
    """Expert LoRA (92M of GPT-OSS-20B's 96M trainable parameters at r8) is the lever a 16 GB card needs."""
    settings = run(2, 2048, lora_r=8, offload_embeddings=True)
    lean = predict(shape("gpt_oss"), *run(2, 2048, lora_r=8, offload_embeddings=True, target_modules=ATTENTION))
    said = "\n".join(describe(shape("gpt_oss"), *settings, 12.8 * GIB))
    assert f"--target-modules o_proj) this run would need {lean.total / GIB:.1f} GiB" in said
    assert lean.total < predict(shape("gpt_oss"), *settings).total - 0.5 * GIB
    assert "attention alone" not in "\n".join(describe(shape("gpt_oss"), *settings, 24 * GIB))  # it fits
    assert "attention alone" not in "\n".join(describe(shape("8b"), *run(4, 2048), 4 * GIB))  # dense: no experts
    attention_only = run(2, 2048, lora_r=8, target_modules=ATTENTION)
    assert "attention alone" not in "\n".join(describe(shape("gpt_oss"), *attention_only, 8 * GIB))  # already


def test_a_bf16_moe_load_is_refused_on_a_card_too_small_but_not_onto_the_cpu(tmp_path, monkeypatch, capsys):
    """hf keeps GPT-OSS-20B's experts in bf16 (about 39 GiB): refused onto a 24 GiB card, in one line naming the
    model; loaded onto the CPU, as FSDP does before sharding it across the cards, only noted."""
    GptOssConfig(**GPT_OSS_20B).save_pretrained(tmp_path)
    assert memory.card_memory("cpu") is None
    cards = {"cuda:1": 24 * GIB, "cuda:0": 80 * GIB}
    monkeypatch.setattr(memory, "card_memory", lambda device=None: cards.get(device))  # no GPU on the test machine
    with pytest.raises(BackendError, match=rf"{tmp_path}: .* more than this GPU's 24 GiB; use --backend unsloth"):
        memory.check_hf_quantization(str(tmp_path), REGISTRY["hf"], device="cuda:1")
    memory.check_hf_quantization(str(tmp_path), REGISTRY["hf"], device="cpu")
    assert "--backend unsloth quantizes them" in capsys.readouterr().out
