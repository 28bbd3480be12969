"""``farm report``: one self-contained HTML file for a run, plots inlined as SVG (matplotlib).

Sections: the verdict against the baseline and every change; the project's budgets (one row
per model, variant, board and budget, as its test decided); the seed's size table for models
from a Keras file or SavedModel; the triad per model
(model size, latency, accuracy per variant and board: float32, int8-weights, dynamic, int8
side by side); each variant's speedup over float32 per board; the portability matrix (statuses of every model x variant x board); energy
per inference with its source; trends of the last N nightlies per metric with the
regressions marked; the provenance of every result. Nothing is loaded from
anywhere when the file is opened: no scripts, no fonts, no images outside it.
"""

from __future__ import annotations

import html
import io
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from farm import __version__
from farm.judge.budgets import broken, budgets_summary, stored_verdicts
from farm.judge.regression import (
    METRIC_LABELS,
    PROVENANCE_METRICS,
    Comparison,
    format_pct,
    format_value,
    sentence,
    stored_comparison,
)
from farm.store.figures import float32_counts, is_modelled, size_vs_float32, speedup_vs_float32
from farm.store.results import Finding, ResultRecord, ResultsStore, RunRecord, redact
from farm.store.status import CellStatus, RunStatus, Status
from farm.config.thresholds import Thresholds, load_thresholds
from farm.config.variants import VARIANTS
from farm.report.console import SIZE_TABLES_KEY, human_size, ratio_text

#: the variants side by side in the seed's order (farm.config.variants): float32, int8-weights, dynamic, int8
VARIANT_ORDER = {v: i for i, v in enumerate(VARIANTS)}
VARIANT_COLOURS = {"float32": "#4c72b0", "int8-weights": "#dd8452", "dynamic": "#8172b3", "int8": "#55a868"}
#: the background of a status cell, for every result status and portability cell
STATUS_COLOURS: dict[str, str] = {
    Status.OK: "#d9f2d9", CellStatus.RUNS: "#d9f2d9", CellStatus.PORTABLE: "#e8f6e8",
    Status.FAILED: "#f8d7da", Status.FAULTED: "#f5c6cb", Status.HUNG: "#f5c6cb",
    Status.DOES_NOT_FIT: "#fff3cd", Status.NOT_PORTABLE: "#ffe5b4", Status.ERROR: "#e2e3e5",
    Status.INFRA_ERROR: "#d6eaf8",  # the farm could not use the board: no verdict on the firmware
}
#: the run statuses the verdict box shows as bad
BAD_RUN_STATUSES = (RunStatus.FAILED, RunStatus.ERROR, RunStatus.ABORTED, RunStatus.INCOMPLETE)
SEVERITY_COLOURS = {"regression": "#c0392b", "changed": "#b7950b", "improved": "#1e8449", "noise": "#7f8c8d",
                    "new": "#2471a3", "missing": "#8e44ad"}
#: (metric, label, getter) of the trend plots
TRENDS: tuple[tuple[str, str, Callable[[ResultRecord], float | None]], ...] = (
    ("count", "count per inference", lambda r: r.count_median),
    ("energy", "energy per inference (µJ)", lambda r: r.energy_uj),
    ("accuracy", "accuracy on device", lambda r: r.accuracy_device),
    ("flash", "flash (bytes)", lambda r: r.flash_bytes),
    ("ram", "RAM (bytes)", lambda r: r.ram_bytes),
)


@dataclass
class ReportData:
    run: RunRecord
    records: list[ResultRecord]
    comparison: Comparison
    comparison_source: str  # judged when the run ran | computed for this report | not judged
    history: list[RunRecord]
    history_results: dict[int, list[ResultRecord]]
    history_findings: dict[int, list[Finding]]
    thresholds: Thresholds
    db: str
    #: the run's budget verdicts (farm.judge.budgets: stored by its budget tests)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    #: the seed's size tables stored with the run: model -> rows, or {"error": why}
    size_tables: dict[str, Any] = field(default_factory=dict)


NOT_JUDGED = "not judged: no comparison was stored for this run"


def gather(store: ResultsStore, run_id: int, *, last: int = 20, thresholds: Thresholds | None = None,
           comparison: Comparison | None = None) -> ReportData:
    """Everything the report shows, read from the store.

    The comparison is the one stored with the run (:func:`farm.judge.regression.judge`);
    for a run that was not judged, the ``comparison`` the caller computed, else none (the
    report says that the run was not judged). Nothing is judged here.
    """
    thresholds = thresholds or load_thresholds()
    run = store.run(run_id)
    records = store.results_for_run(run_id)
    stored = stored_comparison(store, run)
    if stored is not None:
        comparison = stored
        source = "judged by the nightly when it ran"
    elif comparison is not None:
        source = "computed for this report (the run was not judged when it ran)"
    else:
        comparison = Comparison(run, None, [], NOT_JUDGED)
        source = NOT_JUDGED
    history = store.runs("nightly", last=last, up_to=run_id)
    if run.kind != "nightly":
        history = [*(history[1:] if len(history) >= last else history), run]
    results = {h.id: (records if h.id == run_id else store.results_for_run(h.id)) for h in history}
    findings = {h.id: (comparison.findings if h.id == run_id else store.findings_for_run(h.id)) for h in history}
    return ReportData(run, records, comparison, source, history, results, findings, thresholds, redact(store.url),
                      budgets=stored_verdicts(run), size_tables=dict((run.details or {}).get(SIZE_TABLES_KEY) or {}))


def write_report(store: ResultsStore, run_id: int, output: Path, *, last: int = 20,
                 thresholds: Thresholds | None = None, comparison: Comparison | None = None) -> Path:
    """Write the report of ``run_id`` to ``output`` (``comparison``: see :func:`gather`)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    data = gather(store, run_id, last=last, thresholds=thresholds, comparison=comparison)
    output.write_text(render(data), encoding="utf-8")
    return output


# --------------------------------------------------------------------------- plots


class _Figures:
    """matplotlib figures -> inline <svg> (text kept as text; ids unique per figure)."""

    def __init__(self) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        self.plt = plt
        self.count = 0

    def svg(self, fig: Any, plot_id: str, caption: str, *, kind: str = "", regressions: int | None = None) -> str:
        import matplotlib

        self.count += 1
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"farm-{plot_id}"}):
            buf = io.StringIO()
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        self.plt.close(fig)
        text = buf.getvalue()
        svg = text[text.index("<svg"):]
        marks = f' data-regressions="{regressions}"' if regressions is not None else ""
        return (f'<figure class="plot{" " + kind if kind else ""}" id="{_e(plot_id)}" data-plot="{_e(plot_id)}"'
                f"{marks}>{svg}<figcaption>{caption}</figcaption></figure>")


def _variants(records: Sequence[ResultRecord]) -> list[str]:
    return sorted({r.variant for r in records}, key=lambda v: (VARIANT_ORDER.get(v, 9), v))


def _devices(records: Sequence[ResultRecord]) -> list[str]:
    return list(dict.fromkeys(r.device for r in records))


def _models(records: Sequence[ResultRecord]) -> list[str]:
    return list(dict.fromkeys(r.model for r in records))


def _grouped_bars(ax: Any, devices: list[str], variants: list[str], value: Callable[[str, str], float | None],
                  status: Callable[[str, str], str | None], fmt: Callable[[float], str], *,
                  hatch: Callable[[str, str], str] | None = None) -> None:
    width = 0.8 / max(len(variants), 1)
    for i, variant in enumerate(variants):
        for j, device in enumerate(devices):
            x = j - 0.4 + width * (i + 0.5)
            v = value(device, variant)
            st = status(device, variant)
            if v is None or (st is not None and st != "ok"):
                if st is not None:
                    ax.text(x, 0.02, st or "-", rotation=90, ha="center", va="bottom", fontsize=7, color="#c0392b",
                            transform=ax.get_xaxis_transform())
                continue
            ax.bar(x, v, width * 0.92, color=VARIANT_COLOURS.get(variant, "#999"), label=variant if j == 0 else None,
                   hatch=hatch(device, variant) if hatch else None, edgecolor="white" if not hatch else "#333")
            ax.annotate(fmt(v), (x, v), ha="center", va="bottom", fontsize=6.5, xytext=(0, 1.5),
                        textcoords="offset points")
    ax.set_xticks(range(len(devices)), devices)
    ax.set_xlim(-0.5, len(devices) - 0.5)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _log_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _lookup(records: Sequence[ResultRecord]) -> dict[tuple[str, str, str], ResultRecord]:
    return {(r.device, r.model, r.variant): r for r in records}


def triad_figure(figs: _Figures, model: str, records: Sequence[ResultRecord]) -> str:
    rows = [r for r in records if r.model == model]
    devices, variants = _devices(rows), _variants(rows)
    by = _lookup(rows)
    fig, axes = figs.plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    # model size (per variant, the same file on every board)
    sizes = {r.variant: r.model_size_bytes for r in rows if r.model_size_bytes}
    ax = axes[0]
    ax.bar(range(len(variants)), [sizes.get(v, 0) for v in variants],
           color=[VARIANT_COLOURS.get(v, "#999") for v in variants])
    base = sizes.get("float32")
    for i, v in enumerate(variants):
        if sizes.get(v):
            label = f"{sizes[v]:,} B" + (f"\n{size_vs_float32(base, sizes[v])}" if base and v != "float32" else "")
            ax.annotate(label, (i, sizes[v]), ha="center", va="bottom", fontsize=7, xytext=(0, 1.5),
                        textcoords="offset points")
    ax.set_xticks(range(len(variants)), variants)
    ax.set_title("model size (.tflite)")
    ax.set_ylabel("bytes")
    ax.margins(y=0.25)
    # latency
    estimate = any(r.latency_is_estimate for r in rows)
    _grouped_bars(axes[1], devices, variants, lambda d, v: _get(by, d, model, v, "latency_us"),
                  lambda d, v: _status(by, d, model, v), lambda x: f"{'~' if estimate else ''}{x:,.0f}")
    _log_axis(axes[1])
    axes[1].set_title("latency per inference")
    axes[1].set_ylabel("µs, log scale" + (" (~ estimate: instructions / clock)" if estimate else ""), fontsize=8)
    # accuracy
    metric = next((r.metric for r in rows if r.metric), "accuracy")
    _grouped_bars(axes[2], devices, variants, lambda d, v: _get(by, d, model, v, "accuracy_device"),
                  lambda d, v: _status(by, d, model, v), lambda x: f"{x:.4f}")
    for i, variant in enumerate(variants):
        width = 0.8 / max(len(variants), 1)
        for j, device in enumerate(devices):
            host = _get(by, device, model, variant, "accuracy_host")
            if host is not None:
                x = j - 0.4 + width * (i + 0.5)
                axes[2].plot([x - width * 0.4, x + width * 0.4], [host, host], color="black", lw=1,
                             label="host reference" if i == 0 and j == 0 else None)
    better = "higher is better" if metric == "accuracy" else "lower is better"
    axes[2].set_title(f"{metric} on the device ({better})")
    axes[2].margins(y=0.2)
    handles, labels = axes[2].get_legend_handles_labels()
    if labels:  # none when no result was measured (every one failed)
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"{model}: size, latency, accuracy", fontweight="bold")
    return figs.svg(fig, f"plot-triad-{model}", f"The triad for <b>{_e(model)}</b>: model size per variant, "
                    f"latency and {_e(metric)} per board and variant (black ticks: the host reference).")


def speedup_figure(figs: _Figures, model: str, records: Sequence[ResultRecord]) -> str | None:
    rows = [r for r in records if r.model == model]
    by = _lookup(rows)
    devices = _devices(rows)
    others = [v for v in _variants(rows) if v != "float32"]
    if not others:
        return None
    fig, ax = figs.plt.subplots(figsize=(8, 3.4), layout="constrained")

    float32 = float32_counts(rows)

    def speed(d: str, v: str) -> float | None:
        other = by.get((d, model, v))
        return speedup_vs_float32(other, float32) if other is not None else None

    def status(d: str, v: str) -> str | None:
        a, b = by.get((d, model, "float32")), by.get((d, model, v))
        bad = [x.status for x in (a, b) if x is not None and x.status != "ok"]
        return bad[0] if bad else ("ok" if a and b else "-")

    _grouped_bars(ax, devices, others, speed, status, lambda x: f"{x:.2f}x")
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_ylabel("speedup vs float32 (x)")
    ax.margins(y=0.12)
    ax.set_title(f"{model}: speed vs float32 per board (count ratio; > 1 is faster)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8)
    return figs.svg(fig, f"plot-speedup-{model}", f"Speedup of <b>{_e(model)}</b> over its float32 build on each "
                    "board: float32 count / variant count. Full-integer int8 should win most on cores without an "
                    "FPU; int8-weights (dequantized, computed in float) should not; dynamic range (hybrid ops: "
                    "integer multiply-accumulates, a float rescale) shows what integer MACs alone buy where "
                    "TensorFlow quantized the weights (it leaves weight tensors under 1024 elements float).")


def energy_figure(figs: _Figures, model: str, records: Sequence[ResultRecord]) -> str | None:
    rows = [r for r in records if r.model == model]
    if not any(r.energy_uj for r in rows):
        return None
    by = _lookup(rows)
    fig, ax = figs.plt.subplots(figsize=(8, 3.4), layout="constrained")
    _grouped_bars(ax, _devices(rows), _variants(rows), lambda d, v: _get(by, d, model, v, "energy_uj"),
                  lambda d, v: _status(by, d, model, v), lambda x: f"{x:.3g}",
                  hatch=lambda d, v: "//" if is_modelled(_get(by, d, model, v, "energy_source")) else "")
    _log_axis(ax)
    ax.set_ylabel("µJ per inference (log scale)")
    ax.set_title(f"{model}: energy per inference (hatched: modelled, not measured)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8)
    return figs.svg(fig, f"plot-energy-{model}", f"Energy per inference of <b>{_e(model)}</b>. Hatched bars are "
                    "modelled (count x V x µA/MHz from the datasheet), not measured; the sources are listed below.")


def trend_figure(figs: _Figures, model: str, metric: str, label: str, getter: Callable[[ResultRecord], float | None],
                 data: ReportData) -> str | None:
    history = data.history
    devices = list(dict.fromkeys(r.device for h in history for r in data.history_results[h.id] if r.model == model))
    variants = _variants([r for h in history for r in data.history_results[h.id] if r.model == model])
    if not devices:
        return None
    series_present = any(getter(r) is not None for h in history for r in data.history_results[h.id]
                         if r.model == model)
    if not series_present:
        return None
    if metric == "accuracy":
        names = {r.metric for h in history for r in data.history_results[h.id] if r.model == model and r.metric}
        if len(names) == 1:
            name = names.pop()
            label = f"{name} on the device ({'higher' if name == 'accuracy' else 'lower'} is better)"
    fig, axes = figs.plt.subplots(1, len(devices), figsize=(4.4 * len(devices), 3.3), squeeze=False,
                                  layout="constrained")
    xs = list(range(len(history)))
    ticks = [f"#{h.id}" for h in history]
    marked = 0
    for ax, device in zip(axes[0], devices):
        unit = None
        for variant in variants:
            ys: list[float | None] = []
            for h in history:
                r = _lookup(data.history_results[h.id]).get((device, model, variant))
                ys.append(getter(r) if r is not None and r.status == "ok" else None)
                if r is not None and r.unit and metric == "count":
                    unit = r.unit
            colour = VARIANT_COLOURS.get(variant, "#999")
            ax.plot(xs, [math.nan if y is None else y for y in ys], marker="o", ms=3, lw=1.2, color=colour,
                    label=variant)
            for x, h in zip(xs, history):
                r = _lookup(data.history_results[h.id]).get((device, model, variant))
                bad = [f for f in data.history_findings.get(h.id, []) if f.severity == "regression"
                       and f.key == (device, model, variant) and f.metric in (metric, "status")]
                if not bad:
                    continue
                marked += 1
                y = ys[x]
                if y is None:  # no value: the result was not ok; mark at the bottom
                    ax.plot([x], [0.04], marker="X", ms=10, color="#c0392b", transform=ax.get_xaxis_transform(),
                            zorder=5)
                    ax.annotate(r.status if r else "missing", (x, 0.1), xycoords=("data", "axes fraction"),
                                fontsize=7, color="#c0392b", ha="center")
                else:
                    ax.plot([x], [y], marker="X", ms=10, color="#c0392b", zorder=5,
                            label="regression" if not any(t.get_label() == "regression" for t in ax.lines) else None)
                    pct = format_pct(bad[0].change_pct)
                    ax.annotate(f"regression {pct}", (x, y), fontsize=7, color="#c0392b", xytext=(4, 4),
                                textcoords="offset points")
        if data.comparison.baseline is not None:
            ids = [h.id for h in history]
            if data.comparison.baseline.id in ids:
                ax.axvline(ids.index(data.comparison.baseline.id), color="#7f8c8d", ls=":", lw=1)
        ax.axvline(len(history) - 1, color="#2c3e50", ls="-", lw=0.5, alpha=0.4)
        ax.set_title(device, fontsize=9)
        ax.set_xticks(xs, ticks, rotation=90 if len(xs) > 8 else 0, fontsize=7)
        ax.set_ylabel(label + (f" ({unit})" if unit else ""), fontsize=8)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False, fontsize=8)
    fig.suptitle(f"{model}: {label} over the last {len(history)} nightlies", fontsize=10, fontweight="bold")
    caption = (f"Trend of <b>{_e(label)}</b> for <b>{_e(model)}</b> per board, one point per nightly (run id); "
               f"red X: a regression judged that night; dotted line: the baseline of this run.")
    return figs.svg(fig, f"plot-trend-{metric}-{model}", caption, kind="trend", regressions=marked)


def _get(by: dict[tuple[str, str, str], ResultRecord], device: str, model: str, variant: str, attr: str) -> Any:
    r = by.get((device, model, variant))
    return getattr(r, attr) if r is not None else None


def _status(by: dict[tuple[str, str, str], ResultRecord], device: str, model: str, variant: str) -> str | None:
    r = by.get((device, model, variant))
    return r.status if r is not None else None


# --------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _run_line(run: RunRecord) -> str:
    when = run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f"run {run.id} · {_e(run.kind)} · <span class='st-{_e(run.status)}'>{_e(run.status)}</span> · {when} · "
            f"commit <code>{_e(run.git_commit or 'unknown')}</code> · farm {_e(run.farm_version)}")


def _verdict(data: ReportData) -> str:
    c = data.comparison
    run = data.run
    details = run.details or {}
    tests = details.get("tests") or {}
    tests_text = ", ".join(f"{n} {k}" for k, n in tests.items() if n) or "no HIL test counts stored"
    regressions = c.regressions
    cls = "bad" if regressions or run.status in BAD_RUN_STATUSES else ("good" if run.status == RunStatus.PASSED else "")
    if c.baseline is None:
        against = f"no baseline: {_e(c.baseline_reason)}"
    else:
        against = f"baseline: {_run_line(c.baseline)} — {_e(c.baseline_reason)}"
    bad_budgets = broken(data.budgets)
    if bad_budgets:
        cls = "bad"
    budget_text = f", {len(bad_budgets)} budget{'s' if len(bad_budgets) != 1 else ''} broken" if data.budgets else ""
    lines = [f'<div class="verdict {cls}"><div class="big">{_e(run.status.upper())}: '
             f"{len(regressions)} regression{'s' if len(regressions) != 1 else ''}{budget_text}</div>",
             f"<div>{_run_line(run)}</div><div>{against}</div>",
             *(["<div>Aborted: its process is gone and it never finished; shown are the results it stored "
                "before.</div>"] if run.status == RunStatus.ABORTED else []),
             *([f"<div>Incomplete: these boards' jobs did not run, so this night is not PASSED and never the "
                f"baseline:</div><ul class='missing'>"
                + "".join(f"<li>{_e(board)}: {_e(why)}</li>" for board, why in details["missing_boards"].items())
                + "</ul>"] if details.get("missing_boards") else []),
             f"<div>HIL tests: {_e(tests_text)}"
             + (f" · {details['measured']} measured ({details.get('firmware_built', 0)} firmware built, "
                f"{details.get('firmware_cached', 0)} cached) in {details.get('seconds', 0):.1f} s"
                if "measured" in details else "") + "</div>"]
    if regressions:
        lines.append("<ul class='regressions'>" + "".join(f"<li>{_e(sentence(f))}</li>" for f in regressions)
                     + "</ul>")
    if bad_budgets:
        lines.append("<ul class='regressions budgets-broken'>" + "".join(
            f"<li>budget: {_e(v.get('sentence'))} <small>(<code>{_e(v.get('test'))}</code>)</small></li>"
            for v in bad_budgets) + "</ul>")
    lines.append("</div>")
    return "".join(lines)


def _findings_table(data: ReportData) -> str:
    c = data.comparison
    if data.comparison_source == NOT_JUDGED:
        return ("<p class='not-judged'>This run was not judged: no comparison with a baseline was stored for it "
                "(<code>farm nightly</code> judges its run; <code>farm compare</code> compares two runs).</p>")
    if c.baseline is None:
        return "<p>Nothing to compare with yet.</p>"
    shown = [f for f in c.findings if f.severity != "noise"]
    order = list(SEVERITY_COLOURS)
    shown.sort(key=lambda f: (f.metric in PROVENANCE_METRICS, order.index(f.severity) if f.severity in order else 99))
    noise = len(c.of("noise"))
    note = (f"<p>{noise} change{'s' if noise != 1 else ''} within a real board's noise band not listed.</p>"
            if noise else "")
    if not shown:
        return f"<p class='good-text'>No change in any metric against run {c.baseline.id}.</p>" + note
    rows = []
    for f in shown:
        colour = SEVERITY_COLOURS.get(f.severity, "#000")
        before_unit = None if f.metric == "count" else f.unit
        rows.append([f"<td class='sev' style='color:{colour}'>{_e(f.severity)}</td>", _e(f.device), _e(f.model),
                     _e(f.variant), _e(METRIC_LABELS.get(f.metric, f.metric)),
                     f"<td class='num'>{_e(format_value(f.metric, f.before, before_unit))}</td>",
                     f"<td class='num'>{_e(format_value(f.metric, f.after, f.unit))}</td>",
                     f"<td class='num'>{_e(format_pct(f.change_pct))}</td>", _e(f.reason)])
    return _table(("severity", "board", "model", "variant", "metric", "before", "after", "change", "why"), rows,
                  "findings") + note


def _budgets_table(budgets: Sequence[dict[str, Any]]) -> str:
    """One row per budget test of the run (the broken first): model, variant, board, budget, limit,
    measured, verdict."""
    if not budgets:
        return ("<p>No budget was judged in this run: the project file (tinyfarm.yaml) sets no "
                "<code>budgets:</code> for its models, or the run has no project.</p>")
    rows = []
    for v in sorted(budgets, key=lambda v: bool(v.get("passed"))):  # the broken ones first, else in test order
        passed = bool(v.get("passed"))
        verdict = "pass" if passed else ("FAIL" if v.get("judged") else "FAIL: not judged")
        colour = STATUS_COLOURS[Status.OK] if passed else STATUS_COLOURS[Status.FAILED]
        rows.append([_e(v.get("model")), _e(v.get("variant")), _e(v.get("device")),
                     f"<code>{_e(v.get('budget'))}</code>",
                     f"<td class='num'>{_e(v.get('limit_text'))}</td>", _e(v.get("measured_text")),
                     f"<td class='status budget-{'pass' if passed else 'fail'}' style='background:{colour}' "
                     f"title=\"{_e(v.get('sentence'))}\">{_e(verdict)}</td>", f"<code>{_e(v.get('test'))}</code>"])
    summary = budgets_summary(budgets)
    return (f"<p class='{'good-text' if not broken(budgets) else 'bad-text'}'>{_e(summary)}.</p>"
            + _table(("model", "variant", "board", "budget", "limit", "measured", "verdict", "test"), rows, "budgets")
            + "<p class='legend'>Each row is one HIL test of the packaged suite (farm/hil/test_budgets.py), named "
              "<code>test_budget[model-variant-board-budget]</code> in the terminal and the JUnit XML. Limits come "
              "from the project file, a board's override over a variant's over the model's. A budget that cannot "
              "be judged (no energy figure on the board, a build that does not fit, no float32 result) fails.</p>")


def _size_tables(tables: dict[str, Any]) -> str:
    """The seed's table per model: the source (SavedModel directory, .keras file), then each variant's .tflite."""
    parts = []
    for model, rows in tables.items():
        parts.append(f"<h3>{_e(model)}</h3>")
        if isinstance(rows, dict):
            parts.append(f"<p class='bad-text'>No size table: {_e(rows.get('error'))}</p>")
            continue
        parts.append(_table(("file", "size", "bytes", "vs source"), [
            [_e(r["label"]), f"<td class='num'>{_e(human_size(r['bytes']))}</td>",
             f"<td class='num'>{r['bytes']:,}</td>", f"<td class='num'>{_e(ratio_text(r['ratio']))}</td>"]
            for r in rows], "sizes"))
    return "".join(parts)


def _triad_table(model: str, records: Sequence[ResultRecord]) -> str:
    rows = sorted((r for r in records if r.model == model), key=lambda r: (r.device, VARIANT_ORDER.get(r.variant, 9)))
    float32 = float32_counts(rows)
    out = []
    for r in rows:
        value = speedup_vs_float32(r, float32)
        speed = "" if value is None else f"{value:.2f}x"
        latency = "-" if r.latency_us is None else f"{'~' if r.latency_is_estimate else ''}{r.latency_us:,.1f} µs"
        count = "-" if r.count_median is None else f"{r.count_median:,.0f} {r.unit}"
        acc = "-" if r.accuracy_device is None else f"{r.metric} {r.accuracy_device:.4f} / {r.accuracy_host:.4f}"
        exact = ("-" if r.bit_exact_fraction is None else f"{r.bit_exact_fraction:.0%}") if r.variant == "int8" \
            else ("-" if r.max_abs_error is None else f"max err {r.max_abs_error:.2g}")
        out.append([_e(r.device), _e(r.variant), _status_cell(r.status, r.message),
                    f"<td class='num'>{_e(f'{r.model_size_bytes:,} B' if r.model_size_bytes else '-')}</td>",
                    f"<td class='num'>{_e(count)}</td>", f"<td class='num'>{_e(latency)}</td>",
                    f"<td class='num'>{_e(speed)}</td>", f"<td class='num'>{_e(acc)}</td>", _e(exact),
                    f"<td class='num'>{_e(_bytes(r.flash_bytes))}</td>",
                    f"<td class='num'>{_e(_bytes(r.ram_bytes))}</td>"])
    return _table(("board", "variant", "status", "model size", "count / inference", "latency", "speed vs float32",
                   "accuracy device / host", "bit-exact / max err", "flash", "RAM"), out, "triad")


def _status_cell(status: str, message: str | None) -> str:
    colour = STATUS_COLOURS.get(status, "#fff")
    title = f' title="{_e(message)}"' if message else ""
    return f"<td class='status' style='background:{colour}'{title}>{_e(status)}</td>"


def _portability(records: Sequence[ResultRecord]) -> str:
    devices = _devices(records)
    combos = sorted({(r.model, r.variant) for r in records}, key=lambda k: (k[0], VARIANT_ORDER.get(k[1], 9)))
    by = _lookup(records)
    rows = []
    for model, variant in combos:
        cells = [_e(model), _e(variant)]
        for device in devices:
            r = by.get((device, model, variant))
            if r is None:
                cells.append("<td class='status'>—</td>")
                continue
            label = "runs" if r.status == "ok" else r.status
            kind = (r.details or {}).get("float_kind")
            text = _e(label) + (f"<br><small>{_e(kind)}</small>" if kind else "")
            if r.status != "ok" and r.message:
                text += f"<br><small class='why'>{_e(_short(r.message, 140))}</small>"
            colour = STATUS_COLOURS.get(label, "#fff")
            cells.append(f"<td class='status' style='background:{colour}' title=\"{_e(r.message or '')}\">{text}</td>")
        rows.append(cells)
    legend = " ".join(f"<span class='chip' style='background:{STATUS_COLOURS[s]}'>{s}</span>"
                      for s in ("runs", "does-not-fit", "not-portable", "faulted", "hung", "failed", "error",
                                "infra-error"))
    return (_table(("model", "variant", *devices), rows, "matrix") +
            f"<p class='legend'>{legend} — under the status: the float kind of the build (float-free, soft-float, "
            f"hard-float); the full reason is in the cell's tooltip. <code>farm portability</code> checks every model "
            f"of the zoo this way.</p>")


def _energy_sources(records: Sequence[ResultRecord]) -> str:
    rows = {}
    for r in records:
        if r.energy_source:
            rows.setdefault(r.energy_source, []).append(r.device)
    if not rows:
        return "<p>No energy figures: no device declares a power monitor or model.</p>"
    items = "".join(f"<li><b>{_e(', '.join(dict.fromkeys(devs)))}</b>: {_e(src)}</li>" for src, devs in rows.items())
    return f"<ul class='sources'>{items}</ul>"


def _provenance(data: ReportData) -> str:
    rows = []
    for r in data.records:
        details = r.details or {}
        firmware = ("cached" if details.get("firmware_cached") else
                    f"built in {details.get('build_seconds', 0):.1f} s") if "firmware_cached" in details else ""
        windows = ", ".join(f"{w:,.0f}" for w in r.window_counts) if r.window_counts else (
            f"{r.windows} (min {r.count_min}, max {r.count_max})" if r.windows else "-")
        rows.append([_e(r.device), _e(r.model), _e(r.variant), _status_cell(r.status, r.message),
                     f"<code title='{_e(r.model_sha256)}'>{_e((r.model_sha256 or '-')[:12])}</code>",
                     f"<code title='{_e(r.elf_sha256)}'>{_e((r.elf_sha256 or '-')[:12])}</code>",
                     _e(firmware), _e(r.compiler), f"<code>{_e(r.compiler_flags)}</code>",
                     _e(r.unit), _e(windows), _e(r.energy_source or "-"), _e(r.host or "local/emulated"),
                     _e(r.farm_version), _e(r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "-")])
    return _table(("board", "model", "variant", "status", "model sha256", "ELF sha256", "firmware", "compiler",
                   "flags", "counter", "timed windows (per inference)", "energy source", "bench host",
                   "farm", "measured (UTC)"), rows, "provenance")


def _bytes(n: int | None) -> str:
    return "-" if n is None else f"{n:,} B"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1c2833;background:#fbfcfc}
header{background:#1c2833;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;color:#d5dbdb}
main{padding:8px 28px 40px;max-width:1500px}
h2{border-bottom:2px solid #d5dbdb;padding-bottom:4px;margin-top:34px}h3{margin:22px 0 6px}
nav a{margin-right:14px;color:#2471a3;font-size:13px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #d5dbdb;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eaeded;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.sev{font-weight:600}td.status{text-align:center}small.why{color:#7b241c}
.verdict{border-left:6px solid #7f8c8d;background:#f4f6f6;padding:10px 16px;margin:16px 0;font-size:13.5px}
.verdict.good{border-color:#1e8449;background:#eafaf1}.verdict.bad{border-color:#c0392b;background:#fdedec}
.verdict .big{font-size:20px;font-weight:700;margin-bottom:4px}
.regressions li{color:#922b21;font-weight:600}.good-text{color:#1e8449;font-weight:600}
.bad-text{color:#c0392b;font-weight:600}
figure.plot{margin:10px 0 18px;background:#fff;border:1px solid #e5e8e8;padding:8px;display:inline-block;max-width:100%}
figure.plot svg{max-width:100%;height:auto}figcaption{font-size:12px;color:#566573;max-width:900px}
.chip{padding:1px 6px;border:1px solid #ccc;font-size:11px}.legend{font-size:12px}
.st-passed{color:#1e8449;font-weight:600}.st-failed,.st-error,.st-aborted{color:#c0392b;font-weight:600}
code{font-size:11.5px}footer{font-size:11.5px;color:#7f8c8d;padding:0 28px 20px}
"""


def render(data: ReportData) -> str:
    figs = _Figures()
    run = data.run
    models = _models(data.records) or _models([r for rs in data.history_results.values() for r in rs])
    sections: list[str] = []

    sections.append("<section id='verdict'><h2>Verdict</h2>" + _verdict(data)
                    + f"<p class='legend'>Changes against the baseline ({_e(data.comparison_source)}); "
                      f"thresholds: {_e(data.thresholds.source)}.</p>" + _findings_table(data) + "</section>")

    if data.budgets or data.run.kind == "nightly":
        sections.append("<section id='budgets'><h2>Budgets: model, variant, board, budget</h2>"
                        + _budgets_table(data.budgets) + "</section>")
    if data.size_tables:
        sections.append("<section id='sizes'><h2>Model sizes: the source, then each variant's .tflite</h2>"
                        + _size_tables(data.size_tables)
                        + "<p class='legend'>The seed's table: the SavedModel directory's (or .keras file's) size "
                          "on disk, then each variant's .tflite and its size against the source.</p></section>")
    triad = ["<section id='triad'><h2>Size, latency, accuracy per model, variant and board</h2>"]
    for model in models:
        triad.append(f"<h3>{_e(model)}</h3>")
        triad.append(triad_figure(figs, model, data.records))
        triad.append(_triad_table(model, data.records))
    triad.append(_units_note(data.records) + "</section>")
    sections.append("".join(triad))

    speed = ["<section id='speedup'><h2>Speedup over float32 per board: int8-weights, dynamic, int8</h2>"]
    for model in models:
        fig = speedup_figure(figs, model, data.records)
        speed.append(fig or f"<p>{_e(model)}: no variant besides float32.</p>")
    sections.append("".join(speed) + "</section>")

    sections.append("<section id='portability'><h2>Portability matrix</h2>" + _portability(data.records)
                    + "</section>")

    energy = ["<section id='energy'><h2>Energy per inference</h2>"]
    for model in models:
        fig = energy_figure(figs, model, data.records)
        if fig:
            energy.append(fig)
    energy.append("<h3>Sources</h3>" + _energy_sources(data.records) + "</section>")
    sections.append("".join(energy))

    trends = [f"<section id='trends'><h2>Trends over the last {len(data.history)} nightlies</h2>"]
    if len(data.history) < 2:
        trends.append("<p>Only one nightly so far: the trends need two.</p>")
    for model in models:
        for metric, label, getter in TRENDS:
            fig = trend_figure(figs, model, metric, label, getter, data)
            if fig:
                trends.append(fig)
    trends.append(_history_table(data) + "</section>")
    sections.append("".join(trends))

    sections.append("<section id='provenance'><h2>Provenance of each result</h2>" + _provenance(data)
                    + "</section>")

    shown = ("verdict", "budgets", "sizes", "triad", "speedup", "portability", "energy", "trends", "provenance")
    nav = " ".join(f"<a href='#{i}'>{i}</a>" for i in shown if f"<section id='{i}'>" in "".join(sections))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinyfarm {run.kind} run {run.id}: {run.status}</title>
<style>{CSS}</style></head>
<body data-run="{run.id}" data-status="{_e(run.status)}" data-regressions="{len(data.comparison.regressions)}"
 data-plots="{figs.count}">
<header><h1>tinyfarm · {_e(run.kind)} run {run.id} · {_e(run.status)}</h1>
<p>{_run_line(run)}</p></header>
<main><nav>{nav}</nav>
{''.join(sections)}
</main>
<footer>Generated {generated} by tinyfarm {__version__} from {_e(data.db)} · {figs.count} plots inline (SVG) ·
no external resources.</footer>
</body></html>
"""


def _units_note(records: Sequence[ResultRecord]) -> str:
    units = sorted({r.unit for r in records if r.unit and r.count_median is not None})
    notes = []
    if "instructions" in units:
        notes.append("Emulated boards count <b>instructions</b>, not cycles (QEMU -icount): latency marked ~ is "
                     "count / clock, an estimate; counts are identical from run to run.")
    if "cycles" in units:
        notes.append("Real boards and the simavr AVR boards (cycle-accurate AVR core, the chip's Timer1) count "
                     "<b>cycles</b> (DWT/SysTick/Timer1): the median of the timed windows, with their "
                     "spread in the provenance table; latency is count / clock, not an estimate.")
    return "".join(f"<p class='legend'>{n}</p>" for n in notes)


def _history_table(data: ReportData) -> str:
    rows = []
    for h in reversed(data.history):
        findings = data.history_findings.get(h.id, [])
        reg = [f for f in findings if f.severity == "regression"]
        rows.append([f"<td>#{h.id}</td>", f"<td class='st-{_e(h.status)}'>{_e(h.status)}</td>",
                     _e(h.started_at.strftime("%Y-%m-%d %H:%M")), f"<code>{_e(h.git_commit or '-')}</code>",
                     _e(f"#{h.baseline_id}" if h.baseline_id else "-"), f"<td class='num'>{len(reg)}</td>",
                     _e("; ".join(sentence(f) for f in itertools.islice(reg, 3))
                        + (f" (+{len(reg) - 3} more)" if len(reg) > 3 else ""))])
    return "<h3>Nightlies</h3>" + _table(("run", "status", "started (UTC)", "commit", "baseline", "regressions",
                                          "what regressed"), rows, "history")
