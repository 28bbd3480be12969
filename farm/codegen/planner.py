"""Static memory plan: where each activation tensor lives in the one arena.

Lifetimes are in operator steps: a tensor is live from the step that writes it
(step 0 for the graph input, which the harness writes before the first op)
through the last step that reads it (the end, for the graph output). Tensors
whose lifetimes do not overlap may share bytes, so the graph input may be
overwritten by a later intermediate: the harness refills the input before every
inference.

Placement is greedy, like TFLM's GreedyMemoryPlanner: biggest tensors first,
each at the lowest aligned offset that does not collide with an already placed
tensor that is live at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
    lifetimes: tuple[Lifetime, ...]

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


def plan_memory(buffers: Sequence[Lifetime], alignment: int = DEFAULT_ALIGNMENT) -> MemoryPlan:
    """Greedy placement of `buffers` (biggest first, lowest fitting offset)."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.tensor))
    placed: list[tuple[int, Lifetime]] = []
    offsets: dict[int, int] = {}
    for buf in order:
        conflicts = sorted(((off, other) for off, other in placed if other.overlaps(buf)), key=lambda p: p[0])
        offset = 0
        for other_offset, other in conflicts:
            if offset + buf.size <= other_offset:
                break  # fits in the gap below this one
            offset = max(offset, _align(other_offset + other.size, alignment))
        offsets[buf.tensor] = offset
        placed.append((offset, buf))
    arena = max((off + buf.size for off, buf in placed), default=0)
    return MemoryPlan(
        offsets=offsets,
        arena_bytes=max(_align(arena, alignment), alignment),
        alignment=alignment,
        lifetimes=tuple(buffers),
    )
