"""Per-example masks from position ids (training/documents.py): the dense masks and the flex mask_mods agree with
an explicit rule, query by query."""

from __future__ import annotations

import pytest
import torch

from booktune.training.documents import ExampleIds, allowed, example_ids, mask_mapping, packed

# Three examples of 5, 3 and 6 tokens in one row, then a second row of one example.
POSITIONS = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5],
                          list(range(14))])


def rule(row: int, q: int, kv: int, window: int | None) -> bool:
    ids = example_ids(POSITIONS)[row]
    return kv <= q and ids[q] == ids[kv] and (window is None or q - kv < window)


@pytest.mark.parametrize("window", [None, 2, 4])
def test_allowed_is_causal_within_each_example_and_its_window(window):
    got = allowed(POSITIONS, window)
    assert got.shape == (2, 1, 14, 14)
    for row in range(2):
        for q in range(14):
            for kv in range(14):
                assert bool(got[row, 0, q, kv]) == rule(row, q, kv, window), (row, q, kv)


def test_example_ids_and_packed():
    assert example_ids(POSITIONS)[0].tolist() == [0] * 5 + [1] * 3 + [2] * 6
    assert packed(POSITIONS) and not packed(POSITIONS[1:]) and not packed(None)


def test_mask_mapping_gives_each_layer_type_its_mask():
    from transformers import AutoConfig

    config = AutoConfig.for_model("gpt_oss", sliding_window=2, num_hidden_layers=2,
                                  layer_types=["sliding_attention", "full_attention"])
    masks = mask_mapping(config, POSITIONS, torch.bfloat16)
    assert set(masks) == {"sliding_attention", "full_attention"}
    for kind, window in (("sliding_attention", 2), ("full_attention", None)):
        assert masks[kind].dtype == torch.bfloat16
        assert torch.equal(masks[kind] == 0, allowed(POSITIONS, window))


@pytest.mark.parametrize("window", [None, 3])
def test_flex_mask_mod_narrowed_to_examples(window):
    """What booktune hands Unsloth's flex attention: its causal or sliding mask_mod, narrowed to one example."""
    def causal(b, h, q, kv):
        return kv <= q

    def sliding(b, h, q, kv):
        return (kv <= q) & (q - kv < window)

    state = ExampleIds()
    state.update(POSITIONS[:1])
    assert state.length == 14 and state.ids.numel() % 128 == 0
    mod = state.within_examples(sliding if window else causal)
    q, kv = torch.arange(14)[:, None], torch.arange(14)[None, :]
    assert torch.equal(mod(0, 0, q, kv), allowed(POSITIONS[:1], window)[0, 0])
    # The next batch reuses the same function and buffer (compiled kernels are not rebuilt), with its own ids.
    step = state.step
    state.update(torch.tensor([[0, 1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7]]))
    assert state.within_examples(sliding if window else causal) is mod and state.step == step + 1
    assert not bool(mod(0, 0, torch.tensor(2), torch.tensor(1)))  # token 2 starts the second example


def test_flex_state_refuses_unflattened_rows_and_forgets_unpacked_ones():
    state = ExampleIds()
    with pytest.raises(ValueError, match="flattened"):
        state.update(POSITIONS)
    state.update(POSITIONS[:1])
    state.update(POSITIONS[1:])
    assert state.length == 0  # one example: Unsloth's own causal mask is right
