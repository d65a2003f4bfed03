"""The compacting CPU decoding loop: `generate`'s tokens, with each row dropped from the batch the step it ends."""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig

from booktune.inference import generate as generate_module
from booktune.inference.attention import cpu_decoding
from booktune.inference.decoding import compact_decode, plain_generation_config
from booktune.inference.sampling import TopKSampler, sampling_arguments
from tests.inference.test_inference_attention import tiny

PAD = 0


def left_padded_batch():
    batch = torch.tensor([[PAD, PAD, PAD, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7], [PAD, 9, 10, 11, 12, 13, 14]])
    return batch, (batch != PAD).long()


def hf_tokens(model, batch, mask, stops, steps, **sampling):
    with cpu_decoding(model):
        out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=steps, eos_token_id=stops,
                             pad_token_id=PAD, **sampling)
    return out[:, batch.shape[1]:]


def batch_sizes(model):
    """The batch size of every forward pass of `model`, as a list filled while the hook stays on."""
    sizes = []
    handle = model.register_forward_pre_hook(lambda m, args, kw: sizes.append(kw["input_ids"].shape[0]),
                                             with_kwargs=True)
    return sizes, handle


def ending(free, row, start, avoid):
    """A token of `row`'s free reply, from position `start` on, that `avoid` (another row's reply) never writes."""
    return next(int(t) for t in free[row, start:] if int(t) not in avoid.tolist())


@pytest.mark.parametrize("model_type, extra", [("llama", {}), ("mistral", {"sliding_window": 6})])
def test_greedy_tokens_equal_generate_while_rows_leave(model_type, extra):
    """Stops chosen so that two rows end early: the tokens equal `generate`'s, padding after each end included, and
    each forward pass holds only the rows still writing (a sliding window of 6 included)."""
    model = tiny(model_type, **extra)
    batch, mask = left_padded_batch()
    free = hf_tokens(model, batch, mask, [96], 14, do_sample=False)
    stops = [ending(free, 0, 1, free[1]), ending(free, 2, 5, free[1])]  # rows 0 and 2 end early, row 1 never
    expected = hf_tokens(model, batch, mask, stops, 14, do_sample=False)
    sizes, handle = batch_sizes(model)
    with cpu_decoding(model):
        got = compact_decode(model, batch, mask, max_new_tokens=14, stop_ids=stops, pad_token_id=PAD)
    handle.remove()
    assert torch.equal(got, expected)
    assert got[1].ne(PAD).all() and got.shape[1] == 14
    assert got[0].eq(PAD).any() and got[2].eq(PAD).any()
    # The pass that writes new token k holds the rows that had not ended before it.
    ends = [next((k for k, t in enumerate(row) if t in stops), 99) for row in got.tolist()]
    assert sizes == [sum(end >= k for end in ends) for k in range(14)]
    assert sizes[0] == 3 and sizes[-1] == 1


def test_all_rows_ending_stops_the_loop():
    """When every row has ended the loop stops, with `generate`'s width."""
    model = tiny("llama")
    batch, mask = left_padded_batch()
    free = hf_tokens(model, batch, mask, [96], 10, do_sample=False)
    stops = sorted({int(free[r, 4]) for r in range(3)})  # each row ends by its fifth token
    expected = hf_tokens(model, batch, mask, stops, 10, do_sample=False)
    with cpu_decoding(model):
        got = compact_decode(model, batch, mask, max_new_tokens=10, stop_ids=stops, pad_token_id=PAD)
    assert got.shape[1] <= 5 and torch.equal(got, expected)


def test_sampled_tokens_equal_generate_while_no_row_ends():
    """With TopKSampler and the same seed, the draws equal `generate`'s with the sampler as its processor (the
    random stream is the same while the batch keeps its rows)."""
    model = tiny("llama")
    batch, mask = left_padded_batch()
    torch.manual_seed(3)
    expected = hf_tokens(model, batch, mask, [96], 12, do_sample=False,
                         logits_processor=[TopKSampler(0.9, 20, 0.9)])
    assert not expected.eq(96).any()
    torch.manual_seed(3)
    with cpu_decoding(model):
        got = compact_decode(model, batch, mask, max_new_tokens=12, stop_ids=[96], pad_token_id=PAD,
                             sampler=TopKSampler(0.9, 20, 0.9))
    assert torch.equal(got, expected)


@pytest.mark.parametrize("field, value", [("repetition_penalty", 1.3), ("no_repeat_ngram_size", 3),
                                          ("suppress_tokens", [5]), ("min_new_tokens", 4), ("num_beams", 2)])
def test_generation_configs_that_add_processors_go_to_generate(field, value):
    assert plain_generation_config(GenerationConfig())
    assert plain_generation_config(GenerationConfig(repetition_penalty=1.0, temperature=0.7, top_k=20))
    assert not plain_generation_config(GenerationConfig(**{field: value}))


def test_new_tokens_compacts_on_a_cpu_only_for_plain_settings():
    model = tiny("llama")
    model.generation_config = GenerationConfig(pad_token_id=PAD, eos_token_id=96)
    assert generate_module.compacts(model, sampling_arguments(model, 0.8, 0.95))
    assert generate_module.compacts(model, sampling_arguments(model, 0.0, 0.95))
    model.generation_config.repetition_penalty = 1.2
    assert not generate_module.compacts(model, sampling_arguments(model, 0.8, 0.95))
    model.generation_config = GenerationConfig(pad_token_id=PAD, eos_token_id=96, top_k=0)  # transformers samples
    assert not generate_module.compacts(model, sampling_arguments(model, 0.8, 0.95))


def test_a_forward_without_the_loops_inputs_goes_to_generate():
    """Remote code whose forward takes no `logits_to_keep` keeps `generate`; a PeftModel is judged by its base."""
    from peft import LoraConfig, get_peft_model

    model = tiny("llama")
    model.generation_config = GenerationConfig(pad_token_id=PAD, eos_token_id=96)
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert generate_module.compacts(peft, sampling_arguments(peft, 0.8, 0.95))
    forward = model.forward
    model.forward = lambda input_ids=None, attention_mask=None, position_ids=None, past_key_values=None: forward(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=past_key_values)
    assert not generate_module.compacts(model, sampling_arguments(model, 0.8, 0.95))
