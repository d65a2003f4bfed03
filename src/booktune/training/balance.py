"""Equal work per rank under DDP / FSDP: each optimizer step's packed rows dealt to the ranks by token count.

Why. Every DDP step waits for the slowest rank. Packed rows are filled unevenly, so with rows dealt round robin one
rank carries more tokens than the other on most steps. Dealing evens the ranks' tokens; on the 8B benchmark the
steps did not get measurably shorter (docs/benchmarks.md, "Scale-out"), since what the ranks wait for there is mostly
host-side jitter. It costs microseconds and never loads the heaviest rank more, so it stays on for data whose rows
vary more.

What stays the same. The Trainer's own sampler still draws the order (accelerate's seeded sampler, identical on every
rank and on a one-process run). Only the order *inside* each optimizer step's window of
`world_size x grad_accum x batch_size` rows changes, so every global step trains on the same rows as before, and as a
one-process run with the same global batch. The loss is normalised by the step's token count over all ranks
(transformers' `average_tokens_across_devices`, on by default), so which rank holds a row does not change the
gradient. A last partial window passes through as drawn.

Why not the libraries' own. transformers' `train_sampling_strategy="batch_rebalance"` balances padded cost (rows x
longest row) and varies rows per micro-batch, which for flattened packed rows hands one rank the longest rows.
Unsloth's `UNSLOTH_TOKEN_BALANCE` does the same job as this module but only when TRL's own `packing` or
`padding_free` flag is set, and booktune packs its rows itself (so both are off); the hf backend never imports Unsloth.

Layout. accelerate's BatchSamplerShard (split_batches off) deals consecutive `batch_size` chunks round robin: chunk b
of a window goes to rank b % world_size, as its micro-step b // world_size. So rank r's g-th micro-batch is the chunk
at position (g * world_size + r) * batch_size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import Sampler


def deal(sizes: Sequence[int], groups: int) -> list[list[int]]:
    """Positions 0..len(sizes)-1 in `groups` groups of equal count with near-equal size sums.

    Largest first to the lightest group with room, then swaps between the heaviest and the lightest group while a
    swap narrows their gap. Deterministic (ties break on position)."""
    per = len(sizes) // groups
    if per * groups != len(sizes):
        raise ValueError(f"{len(sizes)} rows do not split into {groups} equal groups")
    out: list[list[int]] = [[] for _ in range(groups)]
    sums = [0] * groups
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        g = min((g for g in range(groups) if len(out[g]) < per), key=lambda g: (sums[g], g))
        out[g].append(i)
        sums[g] += sizes[i]
    while groups > 1:
        hi, lo = max(range(groups), key=lambda g: sums[g]), min(range(groups), key=lambda g: sums[g])
        gap = sums[hi] - sums[lo]
        # the swap (a from hi, b from lo) whose moved difference comes closest to half the gap
        best = min(((a, b) for a in out[hi] for b in out[lo]),
                   key=lambda ab: abs(gap - 2 * (sizes[ab[0]] - sizes[ab[1]])), default=None)
        if best is None or abs(gap - 2 * (sizes[best[0]] - sizes[best[1]])) >= gap:
            break
        a, b = best
        out[hi][out[hi].index(a)], out[lo][out[lo].index(b)] = b, a
        moved = sizes[a] - sizes[b]
        sums[hi], sums[lo] = sums[hi] - moved, sums[lo] + moved
    return [sorted(g) for g in out]


def balance_window(window: Sequence[int], lengths: Sequence[int], batch_size: int, grad_accum: int,
                   world_size: int) -> list[int]:
    """One optimizer step's indices reordered so that each rank, and each of its micro-steps, holds about the same
    number of tokens. The same indices come out, in the layout accelerate deals to the ranks."""
    if len(window) != batch_size * grad_accum * world_size:
        raise ValueError(f"expected {batch_size * grad_accum * world_size} indices, got {len(window)}")
    out = [0] * len(window)
    for r, rank_rows in enumerate(rank_split(window, lengths, batch_size, world_size)):
        for g, slot in enumerate(deal([lengths[i] for i in rank_rows], grad_accum)):
            start = (g * world_size + r) * batch_size
            out[start:start + batch_size] = [rank_rows[p] for p in slot]
    return out


def rank_split(window: Sequence[int], lengths: Sequence[int], batch_size: int, world_size: int) -> list[list[int]]:
    """Each rank's rows for one step: dealt by token count, or as drawn where dealing would not lighten the
    heaviest rank (the dealing is a heuristic; the rare window it does worse keeps the drawn split)."""
    chunks = [list(window[s:s + batch_size]) for s in range(0, len(window), batch_size)]
    drawn = [sum(chunks[r::world_size], []) for r in range(world_size)]
    dealt = [[window[p] for p in group] for group in deal([lengths[i] for i in window], world_size)]
    heaviest = [max(sum(lengths[i] for i in rows) for rows in split) for split in (dealt, drawn)]
    return dealt if heaviest[0] < heaviest[1] else drawn


class TokenBalancedSampler(Sampler[int]):
    """The Trainer's sampler, each full optimizer-step window reordered by `balance_window`."""

    def __init__(self, inner: Any, lengths: Sequence[int], batch_size: int, grad_accum: int, world_size: int):
        self.inner, self.lengths = inner, list(lengths)
        self.batch_size, self.grad_accum, self.world_size = batch_size, grad_accum, world_size

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[int]:
        size = self.batch_size * self.grad_accum * self.world_size
        window: list[int] = []
        for index in self.inner:
            window.append(index)
            if len(window) == size:
                yield from balance_window(window, self.lengths, self.batch_size, self.grad_accum, self.world_size)
                window = []
        yield from window

    def set_epoch(self, epoch: int) -> None:  # accelerate reseeds the inner sampler each epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __getattr__(self, name: str) -> Any:  # generator, epoch, data_source... as the Trainer reads them
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def wrap_loader(loader: Any, lengths: Sequence[int], grad_accum: int) -> str:
    """Put a TokenBalancedSampler under accelerate's sharded loader; '' when done, else why not."""
    shard = getattr(loader, "batch_sampler", None)
    inner = getattr(shard, "batch_sampler", None)
    if inner is None or not hasattr(shard, "num_processes"):
        return "the loader is not accelerate's sharded one"
    if getattr(shard, "split_batches", False):
        return "accelerate splits each batch across ranks (split_batches)"
    if not isinstance(getattr(inner, "sampler", None), TokenBalancedSampler):
        inner.sampler = TokenBalancedSampler(inner.sampler, lengths, inner.batch_size, grad_accum,
                                             shard.num_processes)
    return ""


def deal_by_tokens(trainer: Any, lengths: Sequence[int]) -> str:
    """From now on the trainer's training loader deals each step's rows to the ranks by token count.

    `lengths[i]` is the token count of training row i. Call only with several processes and packed rows: padded
    (bucketed) batches cost rows x longest row, which equal token sums would not even out. Returns a line for the
    run's plan."""
    from rich.markup import escape

    from booktune.console import console

    if not trainer.args.average_tokens_across_devices:  # each rank's loss would be its own mean: rows must stay
        return "balance_tokens off: average_tokens_across_devices is off"
    original = trainer.get_train_dataloader

    def get_train_dataloader(*args: Any, **kwargs: Any) -> Any:
        loader = original(*args, **kwargs)
        why = wrap_loader(loader, lengths, trainer.args.gradient_accumulation_steps)
        if why:
            console.print(f"[yellow]balance_tokens skipped: {escape(why)}")
        return loader

    trainer.get_train_dataloader = get_train_dataloader
    return "each step's rows dealt to the ranks by token count (balance_tokens)"
