"""The benchmark: every model x variant x device, measured, with the cost figures side by side.

For each (model, variant, device): the count per inference (instructions on
emulators, cycles on real cores — always labelled), the count per
multiply-accumulate (the MACs the code generator counts in the convolutions and
fully connected layers), flash and RAM bytes of the ELF, the static arena of
the memory plan next to what the tflite-micro interpreter needs for the same
model (its whole arena, and the part of it that holds tensors), and, per model
and device, the speedup of every variant (int8-weights, dynamic, int8) over float32.
The tflite-micro figures of a hybrid (dynamic-range) model are None: TFLM refuses it.

    rows = run_bench(devices, ["digits"], state=state_dir())
    summary = speedups(rows)

Measurements go through farm.measure.job.measure_one (the model's own measurement
plan), so every figure is one the nightly would record too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from farm.config.variants import FLOAT32, VARIANTS
from farm.store.figures import float32_counts, speedup_vs_float32

Progress = Callable[[str], None]

#: the variants whose speedup over float32 the bench reports, in the seed's order
_OTHER_VARIANTS = tuple(v for v in VARIANTS if v != FLOAT32)

#: bench statuses that are a verdict, not a failure: the build is refused with its numbers
ACCEPTED = ("ok", "does-not-fit")


@dataclass(frozen=True)
class ModelFigures:
    """The device-independent figures of one model variant (from the code generator and TFLM)."""

    model: str
    variant: str
    macs: int
    arena_bytes: int  # our static memory plan
    tflm_arena_bytes: int | None  # the tflite-micro interpreter's whole arena (None: TFLM refuses the model)
    tflm_tensor_arena_bytes: int | None  # the part of it that holds tensors and scratch (its "head")
    model_size_bytes: int
    const_bytes: int  # weights and biases as emitted
    latency_only: bool


@dataclass
class BenchRow:
    model: str
    variant: str
    device: str
    status: str
    message: str | None
    unit: str
    count_per_inference: float | None
    count_per_mac: float | None
    latency_us: float | None
    latency_is_estimate: bool | None
    flash_bytes: int | None
    ram_bytes: int | None
    device_flash_bytes: int
    device_ram_bytes: int
    macs: int
    arena_bytes: int
    tflm_arena_bytes: int | None  # None: TFLM refuses the model (hybrid ops)
    tflm_tensor_arena_bytes: int | None
    model_size_bytes: int
    metric: str | None
    accuracy_device: float | None
    accuracy_host: float | None
    bit_exact_fraction: float | None
    max_abs_error: float | None
    latency_only: bool
    speedup_vs_float32: float | None = None  # count(float32) / count(this variant), same device
    #: the stack, bytes: static bound of the build (-fstack-usage over the call graph; None: not
    #: computable), high-water mark painted and measured on the board (None: not painted, e.g.
    #: AVR), and the reservation linked (bound + margin; counted in ram_bytes)
    stack_bound_bytes: int | None = None
    stack_used_bytes: int | None = None
    stack_reserved_bytes: int | None = None
    #: the model RAM (arena + scratch) plus the stack reserved for it: what the model needs
    #: besides the harness's buffers (None: no reservation known)
    model_ram_with_stack_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def model_figures(model: str, variant: str, state: Path, kernels: str = "optimized") -> ModelFigures:
    """Build (or load) the variant and compute its code-generator and TFLM figures."""
    from farm.codegen.generator import plan_for
    from farm.codegen.lowering import lower
    from farm.models import build_variant
    from farm.models.dynamic_range import hybrid_ops
    from farm.models.reference import tflm_arena
    from farm.models.native_output import native_output_to
    from farm.codegen.tflite_reader import read_tflite

    with native_output_to(state / "logs" / "tensorflow.log"):
        art = build_variant(model, variant, state / "models")
    model_file = read_tflite(art.tflite_path)
    lowered = lower(model_file, kernels)
    plan = plan_for(lowered)
    # "Hybrid models are not supported on TFLite Micro": no TFLM arena to compare with
    tflm = None if hybrid_ops(model_file.main) else tflm_arena(art.tflite_path.read_bytes())
    return ModelFigures(
        model=model, variant=variant, macs=lowered.macs, arena_bytes=plan.arena_bytes + plan.scratch_bytes,
        tflm_arena_bytes=tflm.total if tflm else None, tflm_tensor_arena_bytes=tflm.head if tflm else None,
        model_size_bytes=art.size_bytes,
        const_bytes=lowered.const_bytes,
        latency_only=art.latency_only)


def row_from(record: Any, device: Any, figures: ModelFigures) -> BenchRow:
    """A bench row from a farm.store.results.ResultRecord and the model's figures."""
    count = record.count_median if record.status == "ok" else None
    return BenchRow(
        model=figures.model, variant=figures.variant, device=device.name, status=record.status,
        message=record.message, unit=record.unit, count_per_inference=count,
        count_per_mac=(count / figures.macs) if count is not None and figures.macs else None,
        latency_us=record.latency_us, latency_is_estimate=record.latency_is_estimate,
        flash_bytes=record.flash_bytes, ram_bytes=record.ram_bytes,
        device_flash_bytes=int(device.flash_bytes), device_ram_bytes=int(device.ram_bytes),
        macs=figures.macs, arena_bytes=figures.arena_bytes, tflm_arena_bytes=figures.tflm_arena_bytes,
        tflm_tensor_arena_bytes=figures.tflm_tensor_arena_bytes, model_size_bytes=figures.model_size_bytes,
        metric=record.metric, accuracy_device=record.accuracy_device, accuracy_host=record.accuracy_host,
        bit_exact_fraction=record.bit_exact_fraction, max_abs_error=record.max_abs_error,
        latency_only=figures.latency_only, stack_bound_bytes=getattr(record, "stack_bound_bytes", None),
        stack_used_bytes=getattr(record, "stack_used_bytes", None),
        stack_reserved_bytes=getattr(record, "stack_reserved_bytes", None),
        model_ram_with_stack_bytes=(figures.arena_bytes + record.stack_reserved_bytes)
        if getattr(record, "stack_reserved_bytes", None) is not None else None)


def fill_speedups(rows: Sequence[BenchRow]) -> None:
    """Set speedup_vs_float32 on every measured row whose model has a float32 count on its device."""
    float32 = float32_counts(rows, count=_bench_count)
    for r in rows:
        value = speedup_vs_float32(r, float32, count=_bench_count)
        if value is not None:
            r.speedup_vs_float32 = value


def _bench_count(row: BenchRow) -> float | None:
    return row.count_per_inference  # None unless the result was ok (row_from)


def speedup_key(variant: str) -> str:
    """The key of a variant's speedup in :func:`speedups` (``int8_weights_vs_float32``)."""
    return f"{variant.replace('-', '_')}_vs_float32"


def speedups(rows: Iterable[BenchRow]) -> list[dict[str, Any]]:
    """Per (model, device): each variant's speedup over float32, ``int8_weights_vs_float32``,
    ``dynamic_vs_float32``, ``int8_vs_float32`` (None when not measured)."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        entry = table.setdefault((r.model, r.device), {"model": r.model, "device": r.device, "unit": r.unit,
                                                       **{speedup_key(v): None for v in _OTHER_VARIANTS}})
        if r.variant in _OTHER_VARIANTS:
            entry[speedup_key(r.variant)] = r.speedup_vs_float32
    return list(table.values())


def run_bench(devices: Sequence[Any], models: Sequence[str], *, state: Path, variants: Sequence[str] | None = None,
              measure: Callable[..., Any] | None = None, progress: Progress = lambda _: None,
              on_row: Callable[[BenchRow, Any], None] = lambda row, record: None,
              kernels: str = "optimized") -> list[BenchRow]:
    """Measure every model x variant x device; returns the rows with their speedups filled in.

    `measure(device, model, variant)` -> ResultRecord defaults to
    farm.measure.job.measure_one with the model's own plan; `on_row(row, record)` is
    called after each measurement (the CLI stores the record and reports progress).
    """
    if measure is None:
        from farm.measure.job import measure_one

        def measure(device: Any, model: str, variant: str) -> Any:
            return measure_one(device, model, variant, state=state, progress=progress, kernels=kernels)

    rows: list[BenchRow] = []
    for model in models:
        for variant in variants or VARIANTS:
            progress(f"{model}/{variant}: code generator and tflite-micro figures")
            figures = model_figures(model, variant, state, kernels)
            for device in devices:
                record = measure(device, model, variant)
                row = row_from(record, device, figures)
                rows.append(row)
                on_row(row, record)
    fill_speedups(rows)
    return rows


def markdown_table(rows: Sequence[BenchRow]) -> str:
    """The README tables: counts per device, sizes and arenas, speedups (Markdown)."""
    devices = list(dict.fromkeys(r.device for r in rows))
    keys = list(dict.fromkeys((r.model, r.variant) for r in rows))
    by = {(r.model, r.variant, r.device): r for r in rows}
    unit = _unit(rows[0].unit) if rows else ""

    def label(model: str, variant: str) -> str:
        first = next(r for r in rows if (r.model, r.variant) == (model, variant))
        return f"{model}{' *' if first.latency_only else ''} | {variant}"

    def count_cell(r: BenchRow | None) -> str:
        if r is None:
            return ""
        if r.status == "does-not-fit":
            return f"does not fit ({_fit_numbers(r)})"
        if not r.count_per_inference:
            return r.status
        return f"{r.count_per_inference:,.0f} ({r.count_per_mac:.1f})" if r.count_per_mac else \
            f"{r.count_per_inference:,.0f}"

    out = [f"Count per inference ({unit}; per MAC in brackets):", "",
           "| model | variant | MACs | " + " | ".join(devices) + " |",
           "|---|---|---:|" + "---:|" * len(devices)]
    for model, variant in keys:
        first = next(r for r in rows if (r.model, r.variant) == (model, variant))
        out.append(f"| {label(model, variant)} | {first.macs:,} | "
                   + " | ".join(count_cell(by.get((model, variant, d))) for d in devices) + " |")
    out += ["", f"{', '.join(_OTHER_VARIANTS)} speedup over float32 (float32 count / count):", "",
            "| model | " + " | ".join(f"{d} {v}" for d in devices for v in _OTHER_VARIANTS) + " |",
            "|---|" + "---:|" * len(_OTHER_VARIANTS) * len(devices)]
    for model in dict.fromkeys(m for m, _ in keys):
        cells = []
        for d in devices:
            for variant in _OTHER_VARIANTS:
                r = by.get((model, variant, d))
                cells.append(f"{r.speedup_vs_float32:.2f}x" if r and r.speedup_vs_float32 else "—")
        out.append(f"| {model} | " + " | ".join(cells) + " |")
    first_device = devices[0] if devices else ""
    out += ["", f"Sizes (flash and RAM of the ELF on {first_device}) and the arena next to tflite-micro's "
                "(its whole arena; in brackets the part holding tensors):", "",
            "| model | variant | model file B | flash B | RAM B | arena B | TFLM arena B |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for model, variant in keys:
        first = next(r for r in rows if (r.model, r.variant) == (model, variant))
        r = by.get((model, variant, first_device)) or first
        out.append(f"| {label(model, variant)} | {first.model_size_bytes:,} | {_num(r.flash_bytes)} "
                   f"| {_num(r.ram_bytes)} | {first.arena_bytes:,} | {tflm_cell(first)} |")
    if any(r.latency_only for r in rows):
        out += ["", "\\* latency-only: trained on generated data, accuracy not meaningful."]
    out += ["", "Stack per board (bytes): static bound (-fstack-usage over the call graph), high-water mark "
                "painted and measured on the board, reservation linked (bound + margin; in the RAM figure); "
                "model RAM with it = arena + scratch + reservation:", "",
            "| model | variant | " + " | ".join(devices) + " |", "|---|---|" + "---:|" * len(devices)]
    for model, variant in keys:
        out.append(f"| {label(model, variant)} | " + " | ".join(stack_cell(by.get((model, variant, d)), True)
                                                                for d in devices) + " |")
    return "\n".join(out)


def stack_cell(r: BenchRow | None, with_model_ram: bool = False) -> str:
    """bound / used / reserved, as the tables show them ("—" for a figure not known); with the
    model RAM including the reservation in brackets when asked."""
    if r is None:
        return ""
    cell = f"{_num(r.stack_bound_bytes)} / {_num(r.stack_used_bytes)} / {_num(r.stack_reserved_bytes)}"
    return cell + (f" ({_num(r.model_ram_with_stack_bytes)})" if with_model_ram else "")


def _fit_numbers(r: BenchRow) -> str:
    """"RAM 86,352 B > 16,384" from a does-not-fit message (or the message itself)."""
    import re

    found = re.findall(r"(flash|RAM): needs (\d+) bytes, \S+ has (\d+)", r.message or "")
    if not found:
        return r.message or "does not fit"
    return ", ".join(f"{what} {int(need):,} B > {int(have):,}" for what, need, have in found)


def _unit(unit: str) -> str:
    return {"instructions": "instr", "cycles": "cycles"}.get(unit, unit)


def tflm_cell(r: BenchRow) -> str:
    """The TFLM arena of a row as the tables show it: whole arena (tensor part), or why there is none."""
    if r.tflm_arena_bytes is None or r.tflm_tensor_arena_bytes is None:
        return "TFLM refuses (hybrid)"
    return f"{r.tflm_arena_bytes:,} ({r.tflm_tensor_arena_bytes:,})"


def _num(value: int | None) -> str:
    return f"{value:,}" if value is not None else "—"
