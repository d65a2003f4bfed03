"""Decoding attention on a CPU: the direct one-token form computes what SDPA computes, inside `generate` too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from booktune.inference import attention
from booktune.inference.attention import NAME, cpu_decoding, one_token_attention, plain_softmax_attention


def random_qkv(batch=3, heads=6, kv_heads=2, length=11, dim=8):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(batch, heads, 1, dim, generator=g, dtype=torch.float64)
    k, v = (torch.randn(batch, kv_heads, length, dim, generator=g, dtype=torch.float64) for _ in range(2))
    mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    mask[0, ..., :4] = False  # a left-padded row
    return q, k, v, mask


@pytest.mark.parametrize("float_mask", [False, True])
def test_one_token_attention_is_sdpa_with_grouped_heads_and_padding(float_mask):
    q, k, v, mask = random_qkv()
    given = torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, float("-inf")) if float_mask else mask
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True, scale=0.3)
    got = one_token_attention(q, k, v, given, 0.3)  # [B, 1, H, D]
    assert torch.allclose(got.transpose(1, 2), expected, atol=1e-12)
    unmasked = one_token_attention(q, k, v, None, 0.3).transpose(1, 2)
    assert not torch.allclose(unmasked[0], expected[0])  # the padding really was masked
    assert torch.allclose(unmasked[1:], expected[1:], atol=1e-12)


def decode_scores(model, batch, mask, steps=12):
    out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                         return_dict_in_generate=True, output_logits=True, pad_token_id=0)
    return out.sequences, torch.stack(out.logits)


def tiny(model_type: str, **extra):
    import transformers as tf

    config_class = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig}[model_type]
    torch.manual_seed(0)
    config = config_class(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          pad_token_id=0, eos_token_id=96, bos_token_id=1, attn_implementation="sdpa", **extra)
    model_class = {"llama": tf.LlamaForCausalLM, "mistral": tf.MistralForCausalLM}[model_type]
    return model_class(config).eval().double()


@pytest.mark.parametrize("model_type, extra", [("llama", {}), ("mistral", {"sliding_window": 6})])
def test_generate_decodes_as_with_sdpa(model_type, extra, monkeypatch):
    """Greedy tokens and every step's logits of a left-padded batch equal SDPA's, a sliding window of 6 included
    (12 new tokens after 5-9 prompt tokens run past it), and the direct form ran for every new token."""
    model = tiny(model_type, **extra)
    batch = torch.tensor([[0, 0, 0, 0, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    mask = (batch != 0).long()
    expected = decode_scores(model, batch, mask)
    calls = []
    monkeypatch.setattr(attention, "one_token_attention",
                        lambda *a: calls.append(1) or one_token_attention(*a))
    with cpu_decoding(model):
        assert model.config._attn_implementation == NAME
        got = decode_scores(model, batch, mask)
    assert model.config._attn_implementation == "sdpa"  # set back
    assert torch.equal(got[0], expected[0])
    assert torch.allclose(got[1], expected[1], atol=1e-10)
    assert len(calls) == 11 * 2  # 11 one-token steps after the prompt, in each of the 2 layers


def test_models_outside_plain_softmax_attention_keep_their_own():
    import transformers as tf

    config = tf.Gemma2Config(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=4, num_key_value_heads=2, head_dim=8)
    gemma = tf.Gemma2ForCausalLM(config)
    assert not plain_softmax_attention(gemma)  # logit soft-capping
    before = gemma.config._attn_implementation
    with cpu_decoding(gemma):
        assert gemma.config._attn_implementation == before


def test_the_models_attention_comes_back_after_an_error():
    model = tiny("llama")
    with pytest.raises(RuntimeError), cpu_decoding(model):
        raise RuntimeError("stopped")
    assert model.config._attn_implementation == "sdpa"
