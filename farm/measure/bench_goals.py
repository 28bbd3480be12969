"""The optimized-kernel goals, checked against bench rows.

Each goal names a model, variant and device of the default inventory and a
figure of a BenchRow; `evaluate` returns one verdict per goal: the measured
figure next to the target, or "not measured" when the bench did not run that
cell (e.g. ``farm bench --model digits``). Targets are the issues', derived from
TensorFlow Lite Micro + CMSIS-NN measured on the same emulated boards: the first round
("Fast int8 kernels": beat TFLM + CMSIS-NN) and the second ("Kernels at half of CMSIS-NN,
and the memory of TinyEngine").

Figures:
- ``count``: instructions (or cycles) per inference, at most the target;
- ``speedup``: float32 count / int8 count on the same device, at least the target;
- ``model_ram``: the static arena plus the kernels' scratch buffer — what the
  model needs besides the firmware's stack and harness buffers (tflite-micro's
  equivalent is its arena), at most the target;
- ``flash``: the ELF's flash bytes (harness included), at most the target;
- ``runs_bit_exact``: the fraction of outputs identical to the reference when the cell
  ran (0 when it did not: does not fit, failed), at least the target;
- ``profile_per_mac``: instructions per multiply-accumulate of one kind of layer, from
  ``farm profile``'s per-function counts (the functions whose name contains
  ``Goal.functions``, and the static functions of ``Goal.source``) over the MACs of
  the model's ``Goal.opcode`` layers. ``farm bench``
  profiles the cell when it benched it (farm.measure.bench_profile) and passes the figure in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from farm.measure.bench import BenchRow


@dataclass(frozen=True)
class Goal:
    name: str
    model: str
    variant: str
    device: str
    figure: str  # count | speedup | model_ram | flash | runs_bit_exact | profile_per_mac
    target: float
    unit: str
    functions: str = ""  # profile_per_mac: the functions counted (a substring of their names) ...
    source: str = ""  # ... and the static functions of this source file
    opcode: str = ""  # profile_per_mac: the layers whose MACs divide

    @property
    def at_least(self) -> bool:
        return self.figure in ("speedup", "runs_bit_exact")


GOALS: tuple[Goal, ...] = (
    # second round: half of CMSIS-NN, TinyEngine's memory
    Goal("KWS int8 count, Cortex-M4F", "kws", "int8", "qemu-m4f", "count", 3.9e6, "instructions"),
    Goal("KWS int8 count, Cortex-M3", "kws", "int8", "qemu-m3", "count", 6.0e6, "instructions"),
    Goal("VWW int8 count, Cortex-M4F", "vww", "int8", "qemu-m4f", "count", 12.0e6, "instructions"),
    Goal("IC int8 count, Cortex-M4F", "ic", "int8", "qemu-m4f", "count", 16.0e6, "instructions"),
    Goal("AD int8 count, Cortex-M4F", "ad", "int8", "qemu-m4f", "count", 0.40e6, "instructions"),
    Goal("KWS depthwise 3x3, Cortex-M4F", "kws", "int8", "qemu-m4f", "profile_per_mac", 2.5,
         "instructions/MAC", functions="depthwise", source="depthwise_conv2d_s8_fast.c", opcode="DEPTHWISE_CONV_2D"),
    Goal("VWW int8 model RAM", "vww", "int8", "qemu-m4f", "model_ram", 40_000, "bytes"),
    Goal("IC int8 model RAM", "ic", "int8", "qemu-m4f", "model_ram", 40_000, "bytes"),
    Goal("KWS int8 runs bit-exact, RV32 (16 KiB RAM)", "kws", "int8", "qemu-rv32", "runs_bit_exact", 1.0,
         "of outputs"),
    # first round: beat TFLM + CMSIS-NN (kept: they must not regress)
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
    if figure == "runs_bit_exact":
        return (row.bit_exact_fraction or 0.0) if row.status == "ok" else 0.0
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


def evaluate(rows: Sequence[BenchRow], goals: Sequence[Goal] = GOALS,
             profiled: Mapping[str, float] | None = None) -> list[Verdict]:
    """One verdict per goal; `profiled`: the profile_per_mac figures measured, by goal name."""
    by = {(r.model, r.variant, r.device): r for r in rows}
    verdicts = []
    for g in goals:
        row = by.get((g.model, g.variant, g.device))
        if g.figure == "profile_per_mac":
            measured = (profiled or {}).get(g.name)
        else:
            measured = _figure(row, g.figure) if row is not None else None
        unit = row.unit if row is not None and g.figure == "count" else g.unit
        met = None if measured is None else (measured >= g.target if g.at_least else measured <= g.target)
        verdicts.append(Verdict(g.name, g.model, g.variant, g.device, g.figure, g.target, measured, unit, met))
    return verdicts


def goals_markdown(verdicts: Sequence[Verdict]) -> str:
    """The goals as a Markdown table (for the README)."""
    lines = ["", "Optimized-kernel goals (farm/measure/bench_goals.py):", "",
             "| goal | device | target | measured | |", "|---|---|---:|---:|---|"]
    for v in verdicts:
        sign = ">=" if v.figure in ("speedup", "runs_bit_exact") else "<="

        def fmt(value: float) -> str:
            return format_figure(v.figure, value)

        measured = "not measured" if v.measured is None else f"{fmt(v.measured)} {v.unit}"
        verdict = "" if v.met is None else ("met" if v.met else "**not met**")
        lines.append(f"| {v.goal} | {v.device} | {sign} {fmt(v.target)} {v.unit} | {measured} | {verdict} |")
    return "\n".join(lines)


def format_figure(figure: str, value: float) -> str:
    """A goal's target or measured value as the tables print it."""
    if figure in ("speedup", "profile_per_mac", "runs_bit_exact"):
        return f"{value:.2f}"
    return f"{value:,.0f}"
