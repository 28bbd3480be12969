"""Static memory plan: where each activation tensor lives in the one arena.

Lifetimes are in operator steps: a tensor is live from the step that writes it
(step 0 for the graph input, which the harness writes before the first op)
through the last step that reads it (the end, for the graph output). Tensors
whose lifetimes do not overlap may share bytes, so the graph input may be
overwritten by a later intermediate: the harness refills the input before every
inference.

Before placement, tensors that must or may share one buffer are grouped:
- a RESHAPE output *is* its input's bytes (an alias, no copy);
- an element-wise kernel may write its output over an input that dies at that
  step (the step declares which (output, input) pairs it can run in place).
A group is placed as one buffer (the largest member's size) live over the union
of its members' lifetimes.

Some buffers must never share bytes whatever their lifetimes (`apart`): the
graph output and the graph input, because the harness writes the next input
after an inference (it refills the input before every timed inference, and runs
an identical loop with an empty model after the timed one), which must leave the
output readable.

Placement is greedy, like TFLM's GreedyMemoryPlanner: each buffer at the lowest
aligned offset that does not collide with an already placed buffer live at the
same time. Several orders are tried (largest first, as TFLM; longest-lived
first; first-written first) and the smallest arena wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DEFAULT_ALIGNMENT = 16


@dataclass(frozen=True)
class Lifetime:
    tensor: int
    size: int  # bytes
    first: int  # first step it is live (written)
    last: int  # last step it is live (read), inclusive

    def overlaps(self, other: "Lifetime") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class MemoryPlan:
    offsets: dict[int, int]  # tensor index -> byte offset in the arena
    arena_bytes: int
    alignment: int
    lifetimes: tuple[Lifetime, ...]  # one per placed buffer (keyed by its group's root tensor)
    groups: dict[int, int] = field(default_factory=dict)  # tensor -> root tensor of its buffer

    def offset(self, tensor: int) -> int:
        return self.offsets[tensor]


def lifetimes(steps: Sequence[tuple[Iterable[int], Iterable[int]]], sizes: dict[int, int],
              graph_inputs: Iterable[int], graph_outputs: Iterable[int]) -> list[Lifetime]:
    """Lifetimes of the arena tensors (`sizes`' keys) over `steps` = [(reads, writes), ...]."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in graph_inputs:
        if t in sizes:
            first[t] = 0
            last[t] = 0
    for step, (reads, writes) in enumerate(steps):
        for t in writes:
            if t in sizes:
                first.setdefault(t, step)
                last[t] = max(last.get(t, step), step)
        for t in reads:
            if t in sizes:
                if t not in first:
                    raise ValueError(f"tensor #{t} is read at step {step} before anything writes it")
                last[t] = max(last[t], step)
    end = max(len(steps) - 1, 0)
    for t in graph_outputs:
        if t in sizes:
            if t not in first:
                raise ValueError(f"graph output tensor #{t} is never written")
            last[t] = end
    return [Lifetime(t, sizes[t], first[t], last[t]) for t in sorted(first)]


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def group_buffers(buffers: Sequence[Lifetime], aliases: dict[int, int],
                  inplace: Sequence[tuple[int, int, int]],
                  apart: Sequence[tuple[int, int]] = ()) -> tuple[list[Lifetime], dict[int, int]]:
    """Merge tensors that share a buffer. `aliases`: tensor -> the tensor whose bytes
    it is (always merged); `inplace`: (step, output, input) candidates, merged when
    the input's group is last used at that step and the output is written there,
    unless that would put two tensors of an `apart` pair in one buffer.

    Returns (one Lifetime per group, keyed by its root; tensor -> root)."""
    by_tensor = {b.tensor: b for b in buffers}
    root: dict[int, int] = {t: t for t in by_tensor}
    span: dict[int, tuple[int, int, int]] = {t: (b.size, b.first, b.last) for t, b in by_tensor.items()}

    def find(t: int) -> int:
        while root[t] != t:
            root[t] = root[root[t]]
            t = root[t]
        return t

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        sa, sb = span[ra], span[rb]
        keep, drop = (ra, rb) if ra < rb else (rb, ra)
        root[drop] = keep
        span[keep] = (max(sa[0], sb[0]), min(sa[1], sb[1]), max(sa[2], sb[2]))

    for target, source in aliases.items():
        if target in by_tensor and source in by_tensor:
            union(target, source)
    for step, out, inp in inplace:
        if out not in by_tensor or inp not in by_tensor:
            continue
        ro, ri = find(out), find(inp)
        if ro == ri:
            continue
        size_o, first_o, _ = span[ro]
        size_i, _, last_i = span[ri]
        # the input's whole buffer dies at this step and the output's buffer starts here
        kept_apart = any({find(a), find(b)} == {ro, ri} for a, b in apart if a in root and b in root)
        if last_i == step and first_o == step and size_o <= size_i and not kept_apart:
            union(out, inp)
    groups = {t: find(t) for t in by_tensor}
    merged = [Lifetime(r, *span[r]) for r in sorted(set(groups.values()))]
    return merged, groups


def _place(order: Sequence[Lifetime], alignment: int, apart: set[frozenset[int]]) -> tuple[dict[int, int], int]:
    placed: list[tuple[int, Lifetime]] = []
    offsets: dict[int, int] = {}
    for buf in order:
        conflicts = sorted(((off, other) for off, other in placed
                            if other.overlaps(buf) or frozenset((buf.tensor, other.tensor)) in apart),
                           key=lambda p: p[0])
        offset = 0
        for other_offset, other in conflicts:
            if offset + buf.size <= other_offset:
                break  # fits in the gap below this one
            offset = max(offset, _align(other_offset + other.size, alignment))
        offsets[buf.tensor] = offset
        placed.append((offset, buf))
    arena = max((off + buf.size for off, buf in placed), default=0)
    return offsets, arena


#: placement orders tried; the first that gives the smallest arena wins
_ORDERS = (
    lambda b: (-b.size, b.first, b.tensor),  # TFLM's: largest first
    lambda b: (-(b.last - b.first), -b.size, b.tensor),  # longest-lived first
    lambda b: (b.first, -b.size, b.tensor),  # in execution order
    lambda b: (-(b.size * (b.last - b.first + 1)), b.tensor),  # largest area first
)


def plan_memory(buffers: Sequence[Lifetime], alignment: int = DEFAULT_ALIGNMENT, *,
                aliases: dict[int, int] | None = None,
                inplace: Sequence[tuple[int, int, int]] = (),
                apart: Sequence[tuple[int, int]] = ()) -> MemoryPlan:
    """Greedy placement of `buffers` (after grouping aliases and in-place pairs);
    the tensors of each `apart` pair never share bytes (unless an alias makes them one)."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    merged, groups = group_buffers(buffers, aliases or {}, inplace, apart)
    apart_roots = {frozenset((groups[a], groups[b])) for a, b in apart
                   if a in groups and b in groups and groups[a] != groups[b]}
    best: tuple[dict[int, int], int] | None = None
    for key in _ORDERS:
        offsets, arena = _place(sorted(merged, key=key), alignment, apart_roots)
        if best is None or arena < best[1]:
            best = (offsets, arena)
    assert best is not None
    root_offsets, arena = best
    return MemoryPlan(
        offsets={t: root_offsets[r] for t, r in groups.items()},
        arena_bytes=max(_align(arena, alignment), alignment),
        alignment=alignment,
        lifetimes=tuple(merged),
        groups=groups,
    )


def peak_live_bytes(buffers: Sequence[Lifetime]) -> int:
    """The lower bound of any plan: the most bytes live at one step."""
    steps = {s for b in buffers for s in (b.first, b.last)}
    return max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)
