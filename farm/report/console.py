"""Terminal output: inventory, size tables, results, the nightly triad and budgets (rich tables).

Every figure carries its unit and source: counts say "instructions" (emulators)
or "cycles", latency on an instruction count is marked as an estimate ("~"),
energy says whether it was measured or modelled.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from farm.config.capabilities import QEMU_BINARIES
from farm.config.variants import variant_order
from farm.store.figures import float32_counts, is_modelled, size_vs_float32, speedup_vs_float32
from farm.report.labels import run_label
from farm.store.status import RunStatus

JSON_FIELDS = (
    "device", "model", "variant", "status", "message", "unit", "count_median", "count_min", "count_max",
    "windows", "latency_us", "latency_is_estimate", "energy_uj", "energy_source", "metric",
    "accuracy_device", "accuracy_host", "bit_exact_fraction", "max_abs_error", "flash_bytes", "ram_bytes",
    "model_size_bytes", "model_sha256", "elf_sha256", "compiler", "compiler_flags", "host", "farm_version",
)


def result_json(record: Any) -> dict[str, Any]:
    data = record.to_dict()
    out = {key: data.get(key) for key in JSON_FIELDS}
    for key, value in data.items():
        out.setdefault(key, value)
    for key, value in list(out.items()):
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


def device_rows(inventory: Any) -> list[dict[str, Any]]:
    rows = []
    for d in inventory.devices:
        if d.emulator is not None and d.emulator.kind == "simavr":  # the farm's runner on libsimavr
            reach = f"simavr {d.emulator.machine} (cycle-accurate AVR core)"
            state = "ready" if shutil.which("simavr") else "unavailable: simavr not installed"
        elif d.emulator is not None:
            binary = QEMU_BINARIES.get(d.emulator.machine, "?")
            reach = f"QEMU {d.emulator.machine} (icount shift {d.emulator.icount_shift})"
            state = "ready" if shutil.which(binary) else f"unavailable: {binary} not installed"
        else:
            host = getattr(d.serial, "host", None)
            reach = f"{host}:{d.serial.port}" if host else f"serial {d.serial.port}"
            state = "ready" if host or Path(d.serial.port).exists() else f"absent: {d.serial.port} not present"
        rows.append({
            "name": d.name, "core": d.core, "fpu": d.fpu, "dsp": d.dsp, "clock_hz": d.clock_hz,
            "flash_bytes": d.flash_bytes, "ram_bytes": d.ram_bytes, "reached_by": reach,
            "power": d.power.kind if d.power else None, "tags": list(d.tags), "state": state,
        })
    return rows


def print_devices(console: Console, rows: Sequence[dict[str, Any]], source: Path) -> None:
    table = Table(title=f"devices ({source})")
    for col in ("name", "core", "fpu", "dsp", "clock", "flash", "RAM", "reached by", "power", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["core"], r["fpu"], "yes" if r["dsp"] else "no", f"{r['clock_hz'] / 1e6:g} MHz",
                      _kib(r["flash_bytes"]), _kib(r["ram_bytes"]), r["reached_by"], str(r["power"]), r["state"])
    console.print(table)


def print_model_sizes(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title="model file sizes (.tflite)")
    for col in ("model", "variant", "bytes", "vs float32", "host metric"):
        table.add_column(col, justify="right" if col in ("bytes", "vs float32") else "left")
    float_size = {r["model"]: r["size_bytes"] for r in rows if r["variant"] == "float32"}
    for r in rows:
        ratio = float_size.get(r["model"])
        table.add_row(r["model"], r["variant"], str(r["size_bytes"]),
                      size_vs_float32(ratio, r["size_bytes"]) if r["variant"] != "float32" else "",
                      f"{r['metric']} {r['host_metric']:.4f}" + _latency_only_note(r["model"]))
    console.print(table)


def _latency_only_note(model: str) -> str:
    from farm.models import UnknownModelError, get_recipe

    try:
        return " (latency-only: not meaningful)" if get_recipe(model).latency_only else ""
    except UnknownModelError:
        return ""


def print_results(console: Console, records: Iterable[Any], title: str, run: Any = None) -> None:
    """The results of a run, one row each; ``run`` (its RunRecord), when given, says if it was aborted."""
    records = list(records)
    if run is not None and run.status == RunStatus.ABORTED:
        console.print(f"[red]{escape(run_label(run))}: its process is gone and it never finished[/]; "
                      f"{len(records)} result{'s' if len(records) != 1 else ''} stored before", soft_wrap=True)
    table = Table(title=title)
    for col in ("device", "model", "variant", "status", "count / inference", "latency", "energy",
                "accuracy dev / host", "bit-exact", "flash", "RAM"):
        table.add_column(col)
    for r in records:
        table.add_row(r.device, r.model, r.variant, _status(r), _count(r), _latency(r), _energy(r),
                      _accuracy(r), _exact(r), _kib(r.flash_bytes), _kib(r.ram_bytes))
    console.print(table)
    for r in records:
        if r.status != "ok" and r.message:
            console.print(f"[red]{r.device} {r.model}/{r.variant}: {r.status}[/]: {escape(r.message)}")
    _print_sources(console, records)


def print_triad(console: Console, records: Sequence[Any], run_id: int) -> None:
    """The seed's triad per model: size, latency and accuracy per variant and board, the variants
    side by side in the seed's order (float32, int8-weights, dynamic, int8) with their speedup."""
    by_model: dict[str, list[Any]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    if not by_model:
        console.print(f"nightly run {run_id}: no results were stored")
        return
    for model, rows in by_model.items():
        float_count = float32_counts(rows)
        float_size = next((r.model_size_bytes for r in rows if r.variant == "float32"), None)
        table = Table(title=f"nightly run {run_id}: {model} — size, latency, accuracy")
        for col in ("board", "variant", "status", "model size", "count / inference", "latency",
                    "speed vs float32", "energy", "accuracy dev / host", "bit-exact / max err", "flash", "RAM"):
            table.add_column(col)
        for r in sorted(rows, key=lambda x: (x.device, _variant_order(x.variant))):
            size = f"{r.model_size_bytes} B" if r.model_size_bytes else "-"
            if float_size and r.model_size_bytes and r.variant != "float32":
                size += f" ({size_vs_float32(float_size, r.model_size_bytes)})"
            value = speedup_vs_float32(r, float_count)
            speed = "" if value is None else f"{value:.2f}x"
            exact = _exact(r) if r.variant == "int8" else (
                f"max err {r.max_abs_error:.2g}" if r.max_abs_error is not None else "-")
            table.add_row(r.device, r.variant, _status(r), size, _count(r), _latency(r), speed, _energy(r),
                          _accuracy(r), exact, _kib(r.flash_bytes), _kib(r.ram_bytes))
        console.print(table)
    for r in records:
        if r.status != "ok" and r.message:
            console.print(f"[red]{r.device} {r.model}/{r.variant}: {r.status}[/]: {escape(r.message)}")
    _print_sources(console, records)


SEVERITY_STYLE = {"regression": "bold red", "changed": "yellow", "improved": "green", "noise": "dim",
                  "new": "cyan", "missing": "magenta"}


def print_comparison(console: Console, comparison: Any, *, show_noise: bool = False,
                     title: str | None = None) -> None:
    """What changed against the baseline: one row per finding, regressions first."""
    from farm.judge.regression import METRIC_LABELS, PROVENANCE_METRICS, format_pct, format_value

    if comparison.baseline is None:
        console.print(f"no baseline to compare with ({comparison.baseline_reason}): "
                      f"this run becomes the baseline when it passes")
        return
    order = {s: i for i, s in enumerate(SEVERITY_STYLE)}
    shown = sorted((f for f in comparison.findings if show_noise or f.severity != "noise"),
                   key=lambda f: (f.metric in PROVENANCE_METRICS, order.get(f.severity, 99)))
    header = (f"{run_label(comparison.current)} vs baseline {run_label(comparison.baseline)}"
              + (f" — {comparison.baseline_reason}" if comparison.baseline_reason else ""))
    if not shown:
        console.print(escape(header))
        noise = len(comparison.of("noise"))
        console.print("[green]no change[/] in any metric" + (f" ({noise} within the noise band)" if noise else ""))
        return
    table = Table(title=title or escape(header), title_justify="left")
    for col in ("severity", "board", "model", "variant", "metric", "before", "after", "change", "why"):
        table.add_column(col, justify="right" if col in ("before", "after", "change") else "left")
    for f in shown:
        style = SEVERITY_STYLE.get(f.severity, "")
        before_unit = None if f.metric == "count" else f.unit
        table.add_row(f"[{style}]{f.severity}[/]", f.device, f.model, f.variant, METRIC_LABELS.get(f.metric, f.metric),
                      escape(format_value(f.metric, f.before, before_unit)),
                      escape(format_value(f.metric, f.after, f.unit)), format_pct(f.change_pct), escape(f.reason))
    console.print(table)


def comparison_summary(comparison: Any) -> str:
    """One line: ``2 regressions, 1 change within thresholds, 3 improvements against run 14``."""
    if comparison.baseline is None:
        return f"no baseline ({comparison.baseline_reason})"
    parts = []
    words = (("regression", "regression", "regressions"), ("changed", "change within thresholds",
             "changes within thresholds"), ("improved", "improvement", "improvements"),
             ("new", "new result", "new results"), ("missing", "missing result", "missing results"))
    from farm.judge.regression import PROVENANCE_METRICS

    for severity, one, many in words:
        n = len([f for f in comparison.of(severity) if f.metric not in PROVENANCE_METRICS])
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    if not comparison.regressions:
        parts.insert(0, "no regression")
    rebuilt = {f.key for f in comparison.findings if f.metric in PROVENANCE_METRICS}
    if rebuilt:
        parts.append(f"{len(rebuilt)} result{'s' if len(rebuilt) != 1 else ''} from a changed model or firmware")
    return ", ".join(parts) + f" against run {comparison.baseline.id} ({comparison.baseline_reason})"


def print_verdict(console: Console, run_id: int, status: str, comparison: Any, tests_line: str,
                  budgets: Sequence[Mapping[str, Any]] = (), missing: Mapping[str, str] | None = None) -> None:
    """The short text summary at the end of a nightly: each regression, each broken budget
    (``budgets``: the run's stored verdicts, farm.judge.budgets) and each board whose jobs did
    not run (``missing``: farm.judge.coverage) named, then the verdict."""
    from farm.judge.budgets import broken, budgets_summary
    from farm.judge.regression import sentence

    for f in comparison.regressions:
        console.print(f"[bold red]REGRESSION[/] {escape(sentence(f))}", soft_wrap=True)
    for v in broken(budgets):
        console.print(f"[bold red]BUDGET[/] {escape(str(v['sentence']))}  [dim]({escape(str(v['test']))})[/]",
                      soft_wrap=True)
    for board, why in (missing or {}).items():
        console.print(f"[bold red]MISSING[/] {escape(board)}: {escape(why)}", soft_wrap=True)
    colour = "green" if status == "passed" else "red"
    summary = escape(comparison_summary(comparison))
    if missing:
        summary = f"{len(missing)} board(s) did not run ({escape(', '.join(missing))}); " + summary
    if budgets:
        summary += "; " + escape(budgets_summary(budgets))
    console.print(f"nightly run {run_id}: [bold {colour}]{status.upper()}[/] — {summary}", soft_wrap=True)
    console.print(escape(tests_line), soft_wrap=True)


def time_use_text(use: Mapping[str, Any], wall_seconds: float) -> str:
    """One line on where a cluster night's time went (``use``: farm.scale.time_use.TimeUse.to_json)."""
    boards = use.get("board_seconds", {})
    busiest = ", ".join(f"{b} {s:.0f} s" for b, s in sorted(boards.items(), key=lambda x: -x[1]))
    workers = use.get("workers", {})
    text = (f"time (wall-clock seconds on the workers): {wall_seconds:.0f} s for the HIL suite; board jobs "
            f"{sum(use.get('board_jobs', {}).values())} on {len(boards)} boards and {len(workers)} workers over "
            f"{use.get('span_seconds', 0):.0f} s ({busiest}); no board job running for "
            f"{use.get('idle_seconds', 0):.0f} s of it; prepare jobs (convert, generate, build, static check) "
            f"{use.get('prepare_jobs', 0)}, {use.get('prepare_seconds', 0):.0f} s")
    if use.get("lost"):
        text += f"; {use['lost']} board job(s) lost with their worker"
    return text


def print_budgets(console: Console, budgets: Sequence[Mapping[str, Any]], *, all_rows: bool = False) -> None:
    """The run's budget verdicts: how many held, and a table of the broken ones (``all_rows``: of
    every one) — model, variant, board, budget, limit, measured, verdict."""
    from farm.judge.budgets import broken, budgets_summary

    if not budgets:
        return
    shown = list(budgets) if all_rows else broken(budgets)
    colour = "red" if broken(budgets) else "green"
    console.print(f"budgets: [{colour}]{escape(budgets_summary(budgets))}[/]", soft_wrap=True)
    if not shown:
        return
    table = Table(title="budgets" if all_rows else "broken budgets", title_justify="left")
    for col in ("model", "variant", "board", "budget", "limit", "measured", "verdict"):
        table.add_column(col)
    for v in shown:
        verdict = "[green]pass[/]" if v.get("passed") else ("[red]FAIL[/]" if v.get("judged") else
                                                              "[red]FAIL (not judged)[/]")
        table.add_row(escape(str(v["model"])), escape(str(v["variant"])), escape(str(v["device"])),
                      escape(str(v["budget"])), escape(str(v["limit_text"])), escape(str(v["measured_text"])), verdict)
    console.print(table)


#: where a nightly's run details keep the seed's size tables: model -> rows ``{label, bytes, ratio}``
#: (ratio: the size against the source's), or ``{"error": why}`` when the table could not be made
SIZE_TABLES_KEY = "size_tables"


def size_rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """farm.models.sources.SizeRow rows as the plain dicts a run's details keep."""
    return [{"label": r.label, "bytes": int(r.bytes), "ratio": r.ratio_to_source} for r in rows]


def human_size(n: int | None) -> str:
    """``18.9 MB``, ``8.46 MB``, ``2.4 KB``: decimal units, as the seed's table."""
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def ratio_text(ratio: float | None) -> str:
    """A size against the source's: ``2.23x smaller``, ``1.01x larger``, ``same size`` ("" without one)."""
    if not ratio:
        return ""
    if abs(ratio - 1.0) < 1e-9:
        return "same size"
    return f"{1 / ratio:.2f}x smaller" if ratio < 1 else f"{ratio:.2f}x larger"


def print_size_tables(console: Console, tables: Mapping[str, Any]) -> None:
    """The seed's size table per model: the SavedModel directory's (or .keras file's) size, then
    each variant's .tflite and its size against the source."""
    for model, rows in tables.items():
        if isinstance(rows, Mapping):
            console.print(f"[red]{escape(model)}: no size table[/]: {escape(str(rows.get('error')))}", soft_wrap=True)
            continue
        table = Table(title=f"{model}: model size, source and each variant (the seed's table)", title_justify="left")
        for col in ("file", "size", "bytes", "vs source"):
            table.add_column(col, justify="left" if col == "file" else "right")
        for r in rows:
            table.add_row(escape(str(r["label"])), human_size(r["bytes"]), f"{r['bytes']:,}", ratio_text(r["ratio"]))
        console.print(table)


def _print_sources(console: Console, records: Iterable[Any]) -> None:
    units = sorted({r.unit for r in records if r.count_median is not None})
    energy = sorted({r.energy_source for r in records if r.energy_source})
    if units:
        console.print(f"counts: {', '.join(units)} per inference (median of the timed windows)"
                      + ("; latency marked ~ is count / clock, an estimate" if "instructions" in units else ""))
    for source in energy:
        console.print(f"energy: {escape(source)}")


def _variant_order(variant: str) -> int:
    return variant_order(variant)


def _status(r: Any) -> str:
    return "[green]ok[/]" if r.status == "ok" else f"[red]{r.status}[/]"


def _count(r: Any) -> str:
    if r.count_median is None:
        return "-"
    return f"{r.count_median:,.0f} {r.unit}"


def _latency(r: Any) -> str:
    if r.latency_us is None:
        return "-"
    return f"{'~' if r.latency_is_estimate else ''}{r.latency_us:,.1f} µs"


def _energy(r: Any) -> str:
    if r.energy_uj is None:
        return "-"
    kind = "modelled" if is_modelled(r.energy_source) else "measured"
    return f"{r.energy_uj:.4g} µJ ({kind})"


def _accuracy(r: Any) -> str:
    if r.accuracy_device is None or r.accuracy_host is None:
        return "-"
    text = f"{r.metric} {r.accuracy_device:.4f} / {r.accuracy_host:.4f}"
    if (getattr(r, "details", None) or {}).get("latency_only"):
        text += " (latency-only: not meaningful)"
    return text


def _exact(r: Any) -> str:
    return "-" if r.bit_exact_fraction is None else f"{r.bit_exact_fraction:.0%}"


def _kib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KiB"
