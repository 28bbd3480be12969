"""The figures the reports and the bench derive from stored results, computed in one place.

- :func:`speedup_vs_float32`: how much faster a variant runs than the float32 build of its
  model on the same board (float32 count / variant count; > 1 is faster), for the console
  triad, the HTML report (table and plot) and ``farm bench``.
- :func:`size_vs_float32`: a model file's size against its float32 file's, in words ("1.19x
  smaller"; a dynamic-range file whose weights all stayed float can be a little larger).
- :func:`is_modelled` (from :mod:`farm.store.records`): whether an energy figure was
  modelled from the count rather than measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from farm.store.records import is_modelled
from farm.store.status import Status

__all__ = ["FLOAT32", "float32_counts", "is_modelled", "measured_count", "size_vs_float32", "speedup",
           "speedup_vs_float32"]

FLOAT32 = "float32"


class Combination(Protocol):
    """A row about one (device, model, variant): a ResultRecord, a bench row."""

    device: str
    model: str
    variant: str


Row = TypeVar("Row", bound=Combination)


def measured_count(record: Any) -> float | None:
    """The count per inference of a result that is ``ok`` (None otherwise: nothing to compare)."""
    return record.count_median if record.status == Status.OK else None


def speedup(float32_count: float | None, count: float | None) -> float | None:
    """float32 count / variant count (> 1: the variant is faster); None when either is missing or 0."""
    if not float32_count or not count:
        return None
    return float32_count / count


def float32_counts(rows: Iterable[Row], count: Callable[[Row], float | None] = measured_count,
                   ) -> dict[tuple[str, str], float]:
    """(device, model) -> the count of the float32 build (the last one known, if measured twice)."""
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        value = count(r)
        if r.variant == FLOAT32 and value:
            out[(r.device, r.model)] = value
    return out


def speedup_vs_float32(row: Row, float32: dict[tuple[str, str], float],
                       count: Callable[[Row], float | None] = measured_count) -> float | None:
    """The speedup of ``row`` over the float32 build of its model on its device (``float32``:
    from :func:`float32_counts`); None for float32 itself and whenever a count is unknown.

    ``count`` reads a row's count (by default the median of an ``ok`` result).
    """
    if row.variant == FLOAT32:
        return None
    return speedup(float32.get((row.device, row.model)), count(row))


def size_vs_float32(float32_bytes: int | None, size_bytes: int | None) -> str:
    """``"1.19x smaller"`` / ``"1.01x larger"`` / ``"same size"`` ("" when either size is unknown)."""
    if not float32_bytes or not size_bytes:
        return ""
    if size_bytes == float32_bytes:
        return "same size"
    if size_bytes < float32_bytes:
        return f"{float32_bytes / size_bytes:.2f}x smaller"
    return f"{size_bytes / float32_bytes:.2f}x larger"
