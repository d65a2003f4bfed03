"""The launched group's barrier and its closing: a real gloo group here; NCCL's card choice with its calls recorded
(NCCL needs GPUs, which this machine lacks)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from booktune.devices import end_process_group, wait_for_everyone


def test_barrier_then_close_a_real_group(tmp_path):
    end_process_group()  # no group: nothing to close, no error
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        wait_for_everyone()
        assert dist.is_initialized()
        end_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_nccl_barrier_names_this_process_card(monkeypatch):
    """Without device_ids NCCL guesses the card from the rank and warns that this can hang."""
    seen = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda *a: "nccl")
    monkeypatch.setattr(dist, "barrier", lambda device_ids=None: seen.append(device_ids))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    wait_for_everyone()
    monkeypatch.setattr(dist, "get_backend", lambda *a: "gloo")
    wait_for_everyone()
    assert seen == [[1], None]
