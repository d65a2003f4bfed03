"""Which held-out records the voice and answer comparisons use: spread over the whole split, every book its share."""

from booktune.evaluation.compare import pick_records


def test_picks_spread_over_every_book_of_the_split():
    records = [{"id": f"russell-{i}"} for i in range(15)] + [{"id": f"thoreau-{i}"} for i in range(16)]
    picked = pick_records(records, 16)
    assert len(picked) == 16 and len({r["id"] for r in picked}) == 16
    assert sum(r["id"].startswith("thoreau") for r in picked) == 8  # not the first 16 records, all Russell's
    assert picked[0] is records[0] and picked[-1]["id"].startswith("thoreau")


def test_asking_for_more_than_there_are_gives_each_once():
    records = [{"id": i} for i in range(3)]
    assert pick_records(records, 10) == records and pick_records(records, 0) == [] and pick_records([], 4) == []
    assert [r["id"] for r in pick_records([{"id": i} for i in range(10)], 3)] == [0, 3, 6]


def test_held_out_prompts_are_sampled_in_batches_of_sample_batch_size(tiny_run_dir, tiny_data_dir, monkeypatch):
    """Base and tuned replies come from one batch of `sample_batch_size` prompts at a time; 0 takes 32."""
    from booktune.config import EvalConfig
    from booktune.dataset import load_conversations
    from booktune.evaluation.heldout import voice
    from booktune.inference import generate
    from booktune.inference.session import load_run_model

    model, tokenizer, _ = load_run_model(tiny_run_dir, device="cpu")
    held = [r for r in load_conversations(tiny_data_dir, "eval") if r.get("task", "continue") == "continue"]
    assert len(held) >= 4
    real, widths = generate.generate_replies, []

    def counted(model, tokenizer, prompts, **kwargs):  # the real sampling, with each batch's size recorded
        widths.append(len(prompts))
        return real(model, tokenizer, prompts, **kwargs)

    monkeypatch.setattr(generate, "generate_replies", counted)
    for size, expected in ((3, [3, 1, 3, 1]), (16, [4, 4]), (0, [4, 4])):  # tuned batches, then base
        widths.clear()
        settings = EvalConfig(samples=1, voice_prompts=4, max_new_tokens=3, sample_batch_size=size)
        shown, report = voice(model, tokenizer, held, settings, seed=0)
        assert widths == expected and report["prompts"] == 4 and len(shown) == 1


def test_sample_batch_is_32_unless_set():
    from booktune.config import EvalConfig
    from booktune.evaluation.heldout import sample_batch

    assert sample_batch(EvalConfig()) == 32 and sample_batch(EvalConfig(sample_batch_size=5)) == 5


def test_sampling_folds_the_adapter_into_a_copy_of_the_weights_and_restores_them(tiny_model_dir):
    """Folded, the tuned model gives the adapter's own outputs; afterwards every weight is the very tensor it was."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from booktune.evaluation.compare import foldable_layers, folded_adapter

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    model.eval()
    ids = torch.arange(5, 37).view(2, 16)
    weights = [(p, p.data_ptr(), p.detach().clone()) for n, p in model.named_parameters() if "lora" not in n]
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
        with folded_adapter(model):
            folded = model(input_ids=ids).logits
            swapped = sum(p.data_ptr() != own for p, own, _ in weights)
    assert len(foldable_layers(model)) == swapped > 0  # each LoRA layer's weight was swapped for the fold
    assert torch.allclose(folded, tuned, atol=1e-4) and not torch.allclose(plain, tuned, atol=1e-2)
    for p, own, copy in weights:
        assert p.data_ptr() == own and torch.equal(p.detach(), copy)
