"""Which process, which cards, which device: pure functions of the launcher's environment and the card list."""

from __future__ import annotations

import pytest

from booktune.devices import Card, DeviceError, World, choose_precision, default_card, world

G = 2**30
SEED_MACHINE = [Card(0, "NVIDIA GeForce RTX 2070 SUPER", 8 * G), Card(1, "NVIDIA GeForce RTX 4090", 24 * G)]
TWO_H100 = [Card(0, "NVIDIA H100 80GB HBM3", 80 * G), Card(1, "NVIDIA H100 80GB HBM3", 80 * G)]


def test_world_reads_the_launcher_environment():
    assert world({}) == World(0, 0, 1)
    w = world({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (w.rank, w.local_rank, w.size, w.main, w.distributed) == (3, 1, 4, False, True)
    assert not world({}).distributed and world({}).main


def test_one_process_defaults_to_the_largest_card():
    assert default_card(SEED_MACHINE).indices == (1,) and "largest" in default_card(SEED_MACHINE).note
    assert default_card(TWO_H100).indices == (0,) and default_card(TWO_H100).note == ""


def test_4bit_without_a_gpu_is_a_one_line_error_naming_the_field():
    with pytest.raises(DeviceError, match="config field train.load_in_4bit: 4-bit training needs a CUDA GPU"):
        choose_precision("cpu", "auto", True, None)
    prec = choose_precision("cpu", "fp32", None, None)
    assert (prec.device, prec.load_in_4bit, prec.gradient_checkpointing, prec.on_gpu) == ("cpu", False, False, False)


def test_plain_cuda_picks_the_card_as_unset_does_and_an_index_stands(monkeypatch):
    # The card list and CUDA's presence are stand-ins here (no GPU on the CI machine); the choice is pure.
    import torch

    import booktune.devices as devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "visible_cards", lambda: SEED_MACHINE)
    monkeypatch.setattr(devices, "world", lambda env=None: World(0, 0, 1))
    assert devices.pick_device("cuda") == devices.pick_device(None) == "cuda:1"  # the 4090, not a bare "cuda"
    assert devices.pick_device("cuda:0") == "cuda:0" and devices.pick_device("cpu") == "cpu"


@pytest.mark.parametrize("has_bf16", [True, False])
def test_a_cpu_trains_in_bf16_only_where_it_has_the_instructions_and_says_why_not(monkeypatch, has_bf16):
    import torch

    from booktune import devices

    monkeypatch.setattr(devices, "cpu_bf16", lambda: has_bf16)  # the host's own answer is only one of the two
    auto = devices.pick_dtype("auto", "cpu")
    assert auto == (torch.bfloat16 if has_bf16 else torch.float32)
    assert devices.dtype_note("cpu", auto) == ("" if has_bf16 else "this CPU lacks AVX-512 and AMX, so bf16 would be emulated")
    asked = devices.dtype_note("cpu", devices.pick_dtype("bf16", "cpu"))
    assert ("emulated" in asked) is not has_bf16 and (not asked) is has_bf16
    assert devices.dtype_note("cuda:0", torch.bfloat16) == devices.dtype_note("cuda:0", torch.float32) == ""

