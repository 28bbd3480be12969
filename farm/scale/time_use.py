"""Where a night on the cluster spent its time, from its job spans (farm.scale.dispatch.job_spans).

Board jobs (flash + measure, a portability cell) hold their board; prepare jobs are the
host-only work (model conversion, code generation, the firmware build, the static check).
The figures are wall-clock seconds on the workers, summed per board and per kind: with
several boards at once their sum exceeds the night's wall time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from farm.scale.jobs import BOARD, PREPARE


@dataclass
class TimeUse:
    """Seconds of a night's jobs: per board (board jobs), prepare jobs, and the span of the
    board jobs (first start to last end) with the seconds in it when no board job ran."""

    board_seconds: dict[str, float] = field(default_factory=dict)
    board_jobs: dict[str, int] = field(default_factory=dict)
    prepare_seconds: float = 0.0
    prepare_jobs: int = 0
    span_seconds: float = 0.0
    idle_seconds: float = 0.0  # inside the span, no board job running
    workers: dict[str, list[str]] = field(default_factory=dict)  # worker -> the boards its jobs ran
    lost: int = 0  # board jobs with a start and no end (their worker died)

    def to_json(self) -> dict[str, Any]:
        return {"board_seconds": {k: round(v, 1) for k, v in self.board_seconds.items()},
                "board_jobs": dict(self.board_jobs), "prepare_seconds": round(self.prepare_seconds, 1),
                "prepare_jobs": self.prepare_jobs, "span_seconds": round(self.span_seconds, 1),
                "idle_seconds": round(self.idle_seconds, 1), "workers": self.workers, "lost": self.lost}


def time_use(spans: Iterable[Mapping[str, Any]]) -> TimeUse:
    """The TimeUse of ``spans`` (job_spans' dicts)."""
    use = TimeUse()
    intervals: list[tuple[float, float]] = []
    for span in spans:
        started, ended = span.get("started"), span.get("ended")
        if started is None:
            continue
        if span.get("kind") == PREPARE:
            if ended is not None:
                use.prepare_seconds += ended - started
                use.prepare_jobs += 1
            continue
        if span.get("kind") != BOARD:
            continue
        board = str(span.get("board"))
        worker = str(span.get("worker"))
        if board not in use.workers.setdefault(worker, []):
            use.workers[worker].append(board)
        if ended is None:
            use.lost += 1
            continue
        use.board_seconds[board] = use.board_seconds.get(board, 0.0) + (ended - started)
        use.board_jobs[board] = use.board_jobs.get(board, 0) + 1
        intervals.append((started, ended))
    if intervals:
        intervals.sort()
        first, last = intervals[0][0], max(e for _, e in intervals)
        use.span_seconds = last - first
        covered_to = first
        for start, end in intervals:
            if start > covered_to:
                use.idle_seconds += start - covered_to
            covered_to = max(covered_to, end)
    return use
