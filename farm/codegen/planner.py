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
  step (the step declares which (output, input) pairs it can run in place);
- a windowed kernel (a 1x1 or 3x3 convolution, ...) may write its output over an
  input that dies at that step starting `shift` bytes from it (usually below it:
  farm.codegen.inplace derives the shift from the kernel's order of reads and
  writes); the output's group then sits at that distance from the input's.
A group is placed as one buffer, the extent of its members at their distances
from each other (the largest member when they all start together), live over
the union of its members' lifetimes. Members of one group are live at the same
step only at the in-place step that joined them (the input dies there, the
output is born there), and aliases, which are the same bytes.

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
    lifetimes: tuple[Lifetime, ...]  # the bytes of each placed buffer in use (keyed by its group's root), by runs of steps
    groups: dict[int, int] = field(default_factory=dict)  # tensor -> root tensor of its buffer
    in_place: tuple[tuple[int, int, int], ...] = ()  # (step, output, input) placed over their input
    scratch_bytes: int = 0  # the kernel scratch buffer (set by farm.codegen.generator.plan_for)

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
                  inplace: Sequence[tuple[int, ...]],
                  apart: Sequence[tuple[int, int]] = (),
                  alignment: int = DEFAULT_ALIGNMENT) -> tuple[list[Lifetime], dict[int, int]]:
    """Merge tensors that share a buffer. `aliases`: tensor -> the tensor whose bytes
    it is (always merged); `inplace`: (step, output, input) candidates, at the
    input's first byte and only for an output no larger than the input (element-wise
    kernels), or (step, output, input, shift) candidates, the output `shift` bytes
    from the input (rounded down to `alignment`). A candidate is merged when the
    input's group is last used at that step, the output's group is first written
    there, the two overlap (it saves bytes), and no `apart` pair ends up in one buffer.

    Returns (one Lifetime per group, keyed by its root; tensor -> root)."""
    merged, groups, _, _ = _group(buffers, aliases, inplace, apart, alignment)
    return merged, groups


def _group(buffers: Sequence[Lifetime], aliases: dict[int, int], inplace: Sequence[tuple[int, ...]],
           apart: Sequence[tuple[int, int]], alignment: int
           ) -> tuple[list[Lifetime], dict[int, int], dict[int, int], list[tuple[int, int, int]]]:
    """group_buffers, plus each tensor's byte offset in its group's buffer and the
    in-place candidates taken."""
    by_tensor = {b.tensor: b for b in buffers}
    root: dict[int, int] = {t: t for t in by_tensor}
    members: dict[int, list[int]] = {t: [t] for t in by_tensor}
    rel: dict[int, int] = {t: 0 for t in by_tensor}  # offset in the group's buffer
    span: dict[int, tuple[int, int, int]] = {t: (b.size, b.first, b.last) for t, b in by_tensor.items()}

    def join(fixed: int, moved: int, delta: int) -> None:
        """Merge the groups rooted at `fixed` and `moved`, the members of `moved`
        `delta` bytes from where they are in their buffer, relative to `fixed`'s."""
        for t in members[moved]:
            rel[t] += delta
        keep, drop = (fixed, moved) if fixed < moved else (moved, fixed)  # the smaller tensor is the root
        members[keep] = members.pop(fixed) + members.pop(moved)
        low = min(rel[t] for t in members[keep])
        for t in members[keep]:
            rel[t] -= low  # the buffer starts at its lowest member
            root[t] = keep
        size = max(rel[t] + by_tensor[t].size for t in members[keep])
        (_, fa, la), (_, fb, lb) = span.pop(fixed), span.pop(moved)
        span[keep] = (size, min(fa, fb), max(la, lb))

    for target, source in aliases.items():
        if target in by_tensor and source in by_tensor and root[target] != root[source]:
            join(root[source], root[target], rel[source] - rel[target])
    taken: list[tuple[int, int, int]] = []
    for candidate in inplace:
        step, out, inp = candidate[:3]
        if out not in by_tensor or inp not in by_tensor:
            continue
        if len(candidate) > 3:
            shift = candidate[3] // alignment * alignment  # rounded down: smaller shifts stay safe
        elif by_tensor[out].size <= by_tensor[inp].size:
            shift = 0
        else:
            continue
        ro, ri = root[out], root[inp]
        if ro == ri:
            continue
        size_o, first_o, _ = span[ro]
        size_i, _, last_i = span[ri]
        # the input's whole buffer dies at this step and the output's buffer starts here
        if last_i != step or first_o != step:
            continue
        if any({root[a], root[b]} == {ro, ri} for a, b in apart if a in root and b in root):
            continue
        delta = rel[inp] + shift - rel[out]  # moves the output's group to its place
        low, high = min(0, delta), max(size_i, delta + size_o)
        if high - low >= size_i + size_o:
            continue  # no byte shared: nothing saved
        join(ri, ro, delta)
        taken.append((step, out, inp))
    groups = dict(root)
    merged = [Lifetime(r, *span[r]) for r in sorted(set(groups.values()))]
    return merged, groups, rel, taken


#: one member of a group as placed: (offset in its group's buffer, size, first step, last step, tensor)
_Piece = tuple[int, int, int, int, int]


def _place(order: Sequence[Lifetime], pieces: dict[int, list[_Piece]], alignment: int,
           apart: set[frozenset[int]]) -> tuple[dict[int, int], int]:
    """Each group (in `order`) at the lowest aligned offset where none of its members
    collides with a member of a group already placed: bytes in common while both are
    live, or ever for an `apart` pair of tensors. A group is rigid (its members keep
    their distances), but the bytes of a member that is not yet or no longer live
    are free for other groups."""
    placed: list[_Piece] = []  # the members placed, at their arena offsets
    offsets: dict[int, int] = {}
    for buf in order:
        forbidden = []  # group offsets o in the open interval (lo, hi) collide
        for rel, size, first, last, tensor in pieces[buf.tensor]:
            for off, other_size, other_first, other_last, other in placed:
                if (first <= other_last and other_first <= last) or frozenset((tensor, other)) in apart:
                    forbidden.append((off - rel - size, off + other_size - rel))
        offset = 0
        for lo, hi in sorted(forbidden):  # by lo: one pass finds the lowest free offset
            if lo < offset < hi:
                offset = _align(hi, alignment)
        offsets[buf.tensor] = offset
        placed += [(offset + rel, size, first, last, tensor) for rel, size, first, last, tensor in pieces[buf.tensor]]
    arena = max((off + size for off, size, *_ in placed), default=0)
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
                inplace: Sequence[tuple[int, ...]] = (),
                apart: Sequence[tuple[int, int]] = ()) -> MemoryPlan:
    """Greedy placement of `buffers` (after grouping aliases and in-place candidates,
    see group_buffers); the tensors of each `apart` pair never share bytes (unless
    an alias makes them one).

    A group is rigid, so a chain of kernels each writing a little below its input
    drifts: its buffer grows by every shift. The element-wise candidates and those
    at shift 0 with an output no larger than the input never grow a buffer and are
    always taken; every other one is kept only if the arena does not grow with it,
    tried in step order and, separately, largest saving first (each twice over, as
    a later one may make an earlier one pay), then each dropped again if the arena
    shrinks without it; the smaller arena wins (and no in-place at all, if smaller still)."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    sizes = {b.tensor: b.size for b in buffers}

    def free(c: tuple[int, ...]) -> bool:
        return len(c) == 3 or (c[3] >= 0 and sizes.get(c[1], 0) <= sizes.get(c[2], 0))

    always = [c for c in inplace if free(c)]
    tried = [c for c in inplace if not free(c)]
    start = _plan(buffers, alignment, aliases or {}, always, apart)
    best = start
    for order in (tried, sorted(tried, key=lambda c: -min(sizes.get(c[1], 0), sizes.get(c[2], 0)))):
        chosen, plan = list(always), start
        for candidate in order + order:
            if candidate in chosen:
                continue
            trial = _plan(buffers, alignment, aliases or {}, chosen + [candidate], apart)
            if trial.arena_bytes <= plan.arena_bytes and len(trial.in_place) > len(plan.in_place):
                chosen.append(candidate)
                plan = trial
        for candidate in [c for c in chosen if c in tried]:  # one taken early may cost more than it saves
            trial = _plan(buffers, alignment, aliases or {}, [c for c in chosen if c != candidate], apart)
            if trial.arena_bytes < plan.arena_bytes:
                chosen.remove(candidate)
                plan = trial
        if (plan.arena_bytes, -len(plan.in_place)) < (best.arena_bytes, -len(best.in_place)):
            best = plan
    if always:  # greedy: never worse than no in-place at all
        none = _plan(buffers, alignment, aliases or {}, [], apart)
        if none.arena_bytes < best.arena_bytes:
            best = none
    return best


def _plan(buffers: Sequence[Lifetime], alignment: int, aliases: dict[int, int],
          inplace: Sequence[tuple[int, ...]], apart: Sequence[tuple[int, int]]) -> MemoryPlan:
    merged, groups, rel, taken = _group(buffers, aliases, sorted(inplace, key=lambda c: c[0]), apart, alignment)
    apart_tensors = {frozenset((a, b)) for a, b in apart if a in groups and b in groups and groups[a] != groups[b]}
    pieces: dict[int, list[_Piece]] = {}
    for b in buffers:
        pieces.setdefault(groups[b.tensor], []).append((rel[b.tensor], b.size, b.first, b.last, b.tensor))
    best: tuple[dict[int, int], int] | None = None
    for key in _ORDERS:
        offsets, arena = _place(sorted(merged, key=key), pieces, alignment, apart_tensors)
        if best is None or arena < best[1]:
            best = (offsets, arena)
    assert best is not None
    root_offsets, arena = best
    return MemoryPlan(
        offsets={t: root_offsets[r] + rel[t] for t, r in groups.items()},
        arena_bytes=max(_align(arena, alignment), alignment),
        alignment=alignment,
        lifetimes=tuple(_live_extents(merged, pieces)),
        groups=groups,
        in_place=tuple(taken),
    )


def _live_extents(merged: Sequence[Lifetime], pieces: dict[int, list[_Piece]]) -> list[Lifetime]:
    """Each group's bytes in use, step by step: the extent of its members live at a
    step, one Lifetime (keyed by the group's root) per run of steps with one extent."""
    out: list[Lifetime] = []
    for group in merged:
        run: tuple[int, int] | None = None  # (size, first step) of the current run
        for step in range(group.first, group.last + 2):
            live = [(rel, rel + size) for rel, size, first, last, _ in pieces[group.tensor] if first <= step <= last]
            size = max(hi for _, hi in live) - min(lo for lo, _ in live) if live else 0
            if run is not None and size != run[0]:
                if run[0]:
                    out.append(Lifetime(group.tensor, run[0], run[1], step - 1))
                run = None
            if run is None:
                run = (size, step)
    return out


def peak_live_bytes(buffers: Sequence[Lifetime]) -> int:
    """The lower bound of any plan: the most bytes live at one step."""
    steps = {s for b in buffers for s in (b.first, b.last)}
    return max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)
