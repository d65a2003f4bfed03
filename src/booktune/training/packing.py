"""Batches for training: examples packed into `max_seq_length` rows without cross-talk, or padded to a few lengths.

Packing. Examples are packed best-fit-decreasing into rows of at most `max_seq_length` tokens, and the rows evened
out so that each holds about as many tokens as the others (no short last step). Each example keeps
its own position ids (restarting at 0) and the first label of each example is masked, so no token is predicted
from the end of the previous example. Attention stays inside each example because transformers 5 reads the
restarting position ids, when no attention mask is passed, as packed-sequence boundaries:
- FlashAttention (flash_attention_2/3, booktune's varlen path) gets cu_seqlens: the batch is flattened into
  one row, padded only to a multiple of ALIGN tokens;
- SDPA, eager and flex attention get a block-diagonal mask: rows stay rows, padded at the end, the padding
  forming its own segment with no labels;
- Unsloth infers the same boundaries from a flattened row (batch 1, no mask); for GPT-OSS, whose masks transformers
  builds without the position ids, booktune hands the boundaries to the attention itself (documents.py).
Which of these a model gets is its backend's choice (`Backend.batching`). Where a step's rows are flattened into one
anyway, the step is packed as one bin of `batch_size x max_seq_length` tokens, which whole examples fill fuller than
`batch_size` separate rows of `max_seq_length` (tests/training/test_training_packing.py, docs/benchmarks.md).

Passages in one step. A passage trained in two forms (its continuation and the answer to its question) is packed
with both in one row, so one step learns the passage in both forms: trained in separate steps, the second step sees
text the first has already taught, as in a second epoch, and the held-out loss is worse for it (docs/quality.md).
Such a row may hold two examples' worth of tokens (`group_len`) where a step would hold less.

Fallback. Where isolation is not available (Unsloth's Gemma 2 path, GPT-OSS under sdpa or flex in the hf
backend, other attention kernels), examples are sorted by length into batches and padded to the next of a few
fixed lengths. Few lengths matter on GPUs: cuDNN attention builds a new graph for every new shape, at a cost of
a tenth of a second or more each.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from typing import Any

IGNORE = -100
ALIGN = 16  # every batch is padded to a multiple of this many tokens
VARLEN = "booktune_varlen"  # booktune's own packed attention (varlen.py)
FLASH = ("flash_attention_2", "flash_attention_3", VARLEN)
MASKED = ("sdpa", "eager", "flex_attention")


def pack(rows: list[dict[str, Any]], max_len: int, bin_len: int = 0,
         groups: list[str] | None = None) -> list[dict[str, Any]]:
    """Best-fit-decreasing packing of {'input_ids', 'labels'} rows of at most `max_len` tokens into rows of at most
    `bin_len` tokens (`max_len` when 0), with 'seq_lengths'; the rows are then evened out (`_even`).

    `groups`: a key per row. Rows of one key stay in one packed row, which may then hold up to
    `group_len(max_len, bin_len)` tokens (`units`): they are trained in the same step."""
    bin_len = max(bin_len, max_len)
    lengths = [len(r["input_ids"]) for r in rows]
    for i, n in enumerate(lengths):
        if n > max_len:
            raise ValueError(f"example {rows[i].get('id', i)} has {n} tokens, over max_seq_length {max_len}")
    atoms = units(lengths, groups, group_len(max_len, bin_len)) if groups else [[i] for i in range(len(rows))]
    sizes = [sum(lengths[i] for i in a) for a in atoms]
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted
    for a in sorted(range(len(atoms)), key=lambda a: -sizes[a]):
        at = bisect.bisect_left(free, (sizes[a], -1))
        if at < len(free):
            room, b = free.pop(at)
            bins[b].append(a)
            bisect.insort(free, (room - sizes[a], b))
        else:  # a unit longer than a row gets a row of its own
            bins.append([a])
            bisect.insort(free, (max(bin_len - sizes[a], 0), len(bins) - 1))
    _even(bins, sizes, bin_len)
    return [_join([rows[i] for a in members for i in atoms[a]]) for members in bins]


def group_len(max_len: int, bin_len: int) -> int:
    """The most tokens one group's packed row may hold: a step's row, and at least two examples' worth, so that a
    passage's continuation and its answer always share a step."""
    return max(bin_len, 2 * max_len)


def units(lengths: list[int], groups: list[str], cap: int) -> list[list[int]]:
    """Row indices by group, in order of first appearance; a group over `cap` tokens (a passage with many
    questions) is cut into several units of at most `cap`, best fit."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(groups):
        by_key.setdefault(key, []).append(i)
    out: list[list[int]] = []
    for members in by_key.values():
        parts: list[tuple[int, list[int]]] = []  # (tokens, row indices)
        for i in sorted(members, key=lambda i: -lengths[i]):
            fits = [k for k, (load, _) in enumerate(parts) if load + lengths[i] <= cap]
            if fits:
                k = max(fits, key=lambda k: parts[k][0])
                parts[k] = (parts[k][0] + lengths[i], parts[k][1] + [i])
            else:
                parts.append((lengths[i], [i]))
        out += [part for _, part in parts]
    return out


def _even(bins: list[list[int]], lengths: list[int], bin_len: int, partners: int = 32) -> None:
    """Swaps examples between bins, in place, until their token counts are close to equal. Best-fit leaves its
    last bin part-empty, and a step of few tokens is a short step: evened, every step costs about the same, which
    keeps step times steady and ranks of a distributed run in step. Each round takes the fullest or emptiest bin
    and the one move (an example moved, or two swapped) with one of its `partners` opposites that cuts the spread
    of loads most; the number of bins never changes."""
    loads = [sum(lengths[i] for i in b) for b in bins]
    for _ in range(min(4 * len(bins), 2000)):
        lows = heapq.nsmallest(partners, range(len(bins)), key=loads.__getitem__)
        highs = heapq.nlargest(partners, range(len(bins)), key=loads.__getitem__)
        if loads[highs[0]] - loads[lows[0]] <= bin_len // 256:  # even enough: a step's time varies more than that
            return
        pairs = [(h, lows[0]) for h in highs] + [(highs[0], lo) for lo in lows]
        _, move = max((_best_move(bins, lengths, loads, h, lo, bin_len) for h, lo in pairs), key=lambda m: m[0])
        if move is None:
            return
        h, lo, i, j = move
        a = bins[h].pop(i)
        moved = lengths[a]
        if j is not None:
            b = bins[lo].pop(j)
            bins[h].append(b)
            moved -= lengths[b]
        bins[lo].append(a)
        loads[h], loads[lo] = loads[h] - moved, loads[lo] + moved


def _best_move(bins, lengths, loads, h: int, lo: int, bin_len: int) -> tuple[int, tuple | None]:
    """(gain, (h, lo, i, j)): move example i of the fuller bin h into bin lo, in exchange for example j of lo
    (None: for nothing), shrinking their summed squared loads by gain = d * (gap - d), d the tokens moved."""
    gap = loads[h] - loads[lo]
    best: tuple[int, tuple | None] = (0, None)
    for i, a in enumerate(bins[h]):
        for j, b in [(None, 0), *enumerate(bins[lo])]:
            d = lengths[a] - (0 if j is None else lengths[b])
            if 0 < d < gap and loads[lo] + d <= bin_len and d * (gap - d) > best[0]:
                best = (d * (gap - d), (h, lo, i, j))
    return best


def _join(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ids: list[int] = []
    labels: list[int] = []
    for row in rows:
        ids += row["input_ids"]
        labels += [IGNORE] + list(row["labels"][1:])  # never predict an example's first token from the last one
    return {"input_ids": ids, "labels": labels, "seq_lengths": [len(r["input_ids"]) for r in rows]}


@dataclass
class PackedCollator:
    """Packed rows -> a batch with per-example position ids and no attention mask.

    flatten=True: one row of all tokens (FlashAttention varlen, Unsloth). flatten=False: rows padded to the
    longest, padding as a separate segment (transformers' block-diagonal masks for SDPA / eager / flex).
    width: rows padded to at least this many tokens (the same shape every step, for compiled attention kernels).
    Rows are always padded to a multiple of ALIGN tokens.
    """

    pad_token_id: int
    flatten: bool = True
    width: int = 0
    wide: int = 0  # with `width`: steps longer than it are padded to this, so steps take only these two shapes

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids = [list(r["input_ids"]) for r in rows]
        labels = [list(r["labels"]) for r in rows]
        pos = [[p for n in r["seq_lengths"] for p in range(n)] for r in rows]
        if self.flatten:
            ids, labels, pos = [sum(ids, [])], [sum(labels, [])], [sum(pos, [])]
        # Aligned token counts: the weight gradients reduce over the tokens, and cuBLAS falls back to slow
        # unaligned kernels when their count is not a multiple of 8 (docs/benchmarks.md, profile of the 8B step);
        # Triton compiles a kernel variant per divisibility by 16 of its integer arguments.
        longest = max(len(x) for x in ids)
        if self.width and self.wide and longest > self.width:
            longest = self.wide
        width = -(-max(self.width, longest) // ALIGN) * ALIGN
        for i in range(len(ids)):
            gap = width - len(ids[i])
            ids[i] += [self.pad_token_id] * gap
            labels[i] += [IGNORE] * gap
            pos[i] += list(range(gap))
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "position_ids": torch.tensor(pos)}


def bucket_lengths(max_len: int, n: int = 4, multiple: int = 64) -> list[int]:
    """`n` padded lengths up to max_len, each a multiple of `multiple`: e.g. 512, 1024, 1536, 2048."""
    out = sorted({min(max_len, -(-max_len * k // n) // multiple * multiple or multiple) for k in range(1, n + 1)})
    return out if out[-1] == max_len else out + [max_len]


@dataclass
class BucketCollator:
    """Padded batches whose length is the smallest bucket that holds the longest example (right padding)."""

    pad_token_id: int
    buckets: list[int]

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(r["input_ids"]) for r in rows)
        width = self.buckets[min(bisect.bisect_left(self.buckets, longest), len(self.buckets) - 1)]
        width = max(width, longest)
        pad = [width - len(r["input_ids"]) for r in rows]
        return {
            "input_ids": torch.tensor([list(r["input_ids"]) + [self.pad_token_id] * p for r, p in zip(rows, pad)]),
            "labels": torch.tensor([list(r["labels"]) + [IGNORE] * p for r, p in zip(rows, pad)]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * p for r, p in zip(rows, pad)]),
        }


@dataclass(frozen=True)
class Batching:
    mode: str  # 'packed' | 'bucketed'
    flatten: bool
    why: str
    # Packed steps padded to their full bin, so every step has one shape: compiled kernels (Unsloth's flex
    # attention and MoE kernels for GPT-OSS) are built and tuned once instead of for each new length.
    fixed_width: bool = False
    # The model's own masks would let packed examples mix (backends/base.py MASK_WITHOUT_POSITIONS): booktune hands
    # its attention per-example masks (Backend.isolate, training/documents.py).
    masks: bool = False

    def rows_per_step(self, batch_size: int) -> int:
        """Dataset rows the loader takes per step: flattened packed steps are one row of the whole step's tokens."""
        return 1 if self.mode == "packed" and self.flatten else batch_size

    @property
    def sampling(self) -> str:
        """The Trainer's train_sampling_strategy: bucketed rows are grouped by length so padding stays small."""
        return "group_by_length" if self.mode == "bucketed" else "random"


def training_batches(rows: list[dict[str, Any]], batching: Batching, *, max_len: int, pad_token_id: int,
                     batch_size: int = 1, group: bool = False) -> tuple[list[dict[str, Any]], Any]:
    """(dataset rows, collator) for `batching`. Flattened packed batches come as one row per step of up to
    `batch_size x max_len` tokens (`Batching.rows_per_step`: the loader takes one). `group`: rows with a 'passage'
    key are packed with the other examples of their passage (`pack`)."""
    clean = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]
    if batching.mode == "packed":
        bin_len = max_len * batch_size // batching.rows_per_step(batch_size)  # a step's tokens, over its rows
        groups = [r.get("passage", r.get("id", str(i))) for i, r in enumerate(rows)] if group else None
        width = bin_len if batching.fixed_width else 0
        wide = group_len(max_len, bin_len) if group else 0
        return (pack(clean, max_len, bin_len, groups),
                PackedCollator(pad_token_id, flatten=batching.flatten, width=width, wide=wide))
    return clean, BucketCollator(pad_token_id, bucket_lengths(max_len))
