"""Measurement stage: a protocol session -> counts per inference and on-device outputs.

Run rules after MLPerf Tiny: warm-up inferences first, then several timed windows
of several inferences each; the per-inference count of each window is kept, the
median is reported with the spread, and windows far from the median (more than
``outlier_mads`` median absolute deviations, when the counts vary at all) are
rejected and reported. Counts are converted to the device's unit by a
:data:`farm.board.counts.CountConverter` (instructions on emulators, cycles on real cores).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from farm.board.counts import CountConverter
from farm.board.session import Session

@dataclass(frozen=True)
class MeasurePlan:
    warmup: int = 2
    windows: int = 5
    inferences_per_window: int = 8  # the loop difference is exact to within 2 ticks / n (see main.c)
    outlier_mads: float = 5.0
    #: seconds a board may take to answer one request, and to run one inference,
    #: before it is reported as hung
    request_timeout: float = 10.0
    inference_timeout: float = 30.0


@dataclass
class TimingResult:
    unit: str
    window_counts: list[float]
    rejected: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(statistics.median(self.window_counts))

    @property
    def minimum(self) -> float:
        return float(min(self.window_counts))

    @property
    def maximum(self) -> float:
        return float(max(self.window_counts))


@dataclass
class Measurement:
    identity: dict[str, str]
    timing: TimingResult
    outputs: np.ndarray  # (N, *output_shape) in the output dtype


def measure_timing(session: Session, sample: bytes, plan: MeasurePlan, unit: str,
                   convert: CountConverter, timeout_per_inference: float) -> TimingResult:
    identity = session.identify()
    session.load_input(sample)
    if plan.warmup:
        session.run(plan.warmup, timeout=timeout_per_inference * plan.warmup + 5)
    counts = []
    for _ in range(plan.windows):
        session.run(plan.inferences_per_window, timeout=timeout_per_inference * plan.inferences_per_window + 5)
        timing = session.read_timing()
        if timing.count != plan.inferences_per_window:
            raise RuntimeError(f"board timed {timing.count} inferences, asked for {plan.inferences_per_window}")
        counts.append(convert(timing, identity))
    return reject_outliers(unit, counts, plan.outlier_mads)


def reject_outliers(unit: str, counts: Sequence[float], outlier_mads: float) -> TimingResult:
    median = statistics.median(counts)
    mad = statistics.median(abs(c - median) for c in counts)
    if mad == 0:
        return TimingResult(unit, list(counts))
    kept = [c for c in counts if abs(c - median) <= outlier_mads * mad]
    rejected = [c for c in counts if abs(c - median) > outlier_mads * mad]
    return TimingResult(unit, kept, rejected)


def collect_outputs(session: Session, inputs: np.ndarray, output_shape: tuple[int, ...],
                    output_dtype: np.dtype, timeout: float) -> np.ndarray:
    """Run every sample once and read its output back."""
    out_bytes = int(np.prod(output_shape)) * np.dtype(output_dtype).itemsize
    outputs = np.empty((len(inputs), *output_shape), dtype=output_dtype)
    for i, sample in enumerate(inputs):
        session.load_input(np.ascontiguousarray(sample).tobytes())
        session.run(1, timeout=timeout)
        raw = session.read_output(out_bytes)
        outputs[i] = np.frombuffer(raw, dtype=output_dtype).reshape(output_shape)
    return outputs
