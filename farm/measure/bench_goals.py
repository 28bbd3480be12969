"""The optimized-kernel goals (issue "Fast int8 kernels"), checked against bench rows.

Each goal names a model, variant and device of the default inventory and a
figure of a BenchRow; `evaluate` returns one verdict per goal: the measured
figure next to the target, or "not measured" when the bench did not run that
cell (e.g. ``farm bench --model digits``). Targets are the issue's, derived from
TensorFlow Lite Micro + CMSIS-NN measured on the same emulated boards.

Figures:
- ``count``: instructions (or cycles) per inference, at most the target;
- ``speedup``: float32 count / int8 count on the same device, at least the target;
- ``model_ram``: the static arena plus the kernels' scratch buffer — what the
  model needs besides the firmware's stack and harness buffers (tflite-micro's
  equivalent is its arena), at most the target;
- ``flash``: the ELF's flash bytes (harness included), at most the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from farm.measure.bench import BenchRow


@dataclass(frozen=True)
class Goal:
    name: str
    model: str
    variant: str
    device: str
    figure: str  # count | speedup | model_ram | flash
    target: float
    unit: str


GOALS: tuple[Goal, ...] = (
    Goal("KWS int8 count, Cortex-M4F", "kws", "int8", "qemu-m4f", "count", 6.5e6, "instructions"),
    Goal("KWS int8 count, Cortex-M3", "kws", "int8", "qemu-m3", "count", 9.0e6, "instructions"),
    Goal("AD int8 count, Cortex-M4F", "ad", "int8", "qemu-m4f", "count", 0.5e6, "instructions"),
    Goal("KWS int8 vs float32, Cortex-M4F", "kws", "int8", "qemu-m4f", "speedup", 5.0, "x"),
    Goal("KWS int8 vs float32, Cortex-M3", "kws", "int8", "qemu-m3", "speedup", 20.0, "x"),
    Goal("KWS int8 model RAM", "kws", "int8", "qemu-m4f", "model_ram", 20_000, "bytes"),
    Goal("sine int8 firmware flash", "sine", "int8", "qemu-m4f", "flash", 8_000, "bytes"),
)


@dataclass(frozen=True)
class Verdict:
    goal: str
    model: str
    variant: str
    device: str
    figure: str
    target: float
    measured: float | None
    unit: str
    met: bool | None  # None: not measured in this bench

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _figure(row: BenchRow, figure: str) -> float | None:
    if row.status != "ok":
        return None
    if figure == "count":
        return row.count_per_inference
    if figure == "speedup":
        return row.speedup_vs_float32
    if figure == "model_ram":
        return float(row.arena_bytes)
    if figure == "flash":
        return float(row.flash_bytes) if row.flash_bytes is not None else None
    raise ValueError(f"unknown goal figure {figure!r}")


def evaluate(rows: Sequence[BenchRow], goals: Sequence[Goal] = GOALS) -> list[Verdict]:
    by = {(r.model, r.variant, r.device): r for r in rows}
    verdicts = []
    for g in goals:
        row = by.get((g.model, g.variant, g.device))
        measured = _figure(row, g.figure) if row is not None else None
        unit = row.unit if row is not None and g.figure == "count" else g.unit
        met = None if measured is None else (measured >= g.target if g.figure == "speedup" else measured <= g.target)
        verdicts.append(Verdict(g.name, g.model, g.variant, g.device, g.figure, g.target, measured, unit, met))
    return verdicts


def goals_markdown(verdicts: Sequence[Verdict]) -> str:
    """The goals as a Markdown table (for the README)."""
    lines = ["", "Optimized-kernel goals (farm/measure/bench_goals.py):", "",
             "| goal | device | target | measured | |", "|---|---|---:|---:|---|"]
    for v in verdicts:
        sign = ">=" if v.figure == "speedup" else "<="

        def fmt(value: float) -> str:
            return f"{value:.2f}" if v.figure == "speedup" else f"{value:,.0f}"

        measured = "not measured" if v.measured is None else f"{fmt(v.measured)} {v.unit}"
        verdict = "" if v.met is None else ("met" if v.met else "**not met**")
        lines.append(f"| {v.goal} | {v.device} | {sign} {fmt(v.target)} {v.unit} | {measured} | {verdict} |")
    return "\n".join(lines)
