"""Regression judgement: a run against its baseline, metric by metric, per (device, model, variant).

The baseline of a run is the pinned one (``farm baseline pin RUN``), else the last
nightly that passed before it (:func:`choose_baseline`). :func:`compare_records`
returns a :class:`~farm.store.results.Finding` for every change, judged by the rules of
:mod:`farm.config.thresholds`:

- **status**: ok before and faulted / hung / does-not-fit / not-portable / failed /
  error now is a regression (the reverse is an improvement). Metrics are compared
  only when both results are ok.
- **count** per inference: emulator counts (``instructions``) are deterministic, so
  every change is reported and ``emulated_fail_pct`` decides; real boards
  (``cycles``) compare the medians of the timed windows against a noise band of
  ``board_band_mads`` x 1.4826 x MAD (both runs' windows), and fail only outside
  the band *and* above ``board_fail_pct``; inside the band it is ``noise``.
- **energy**: measured energy fails above ``measured_fail_pct``; modelled energy
  follows the count (reported, never failing on its own).
- **accuracy** (device metric), **bit_exact** (int8), **max_abs_error** (float
  variants): absolute thresholds.
- **flash**, **ram**, **model_size**: growth above a percentage fails.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from farm.store.records import is_modelled
from farm.store.results import Finding, ResultRecord, ResultsStore, RunRecord
from farm.store.status import RunStatus
from farm.config.thresholds import Rules, Thresholds

#: the metrics a comparison looks at, in report order, with a label for people
METRIC_LABELS = {
    "status": "status",
    "count": "count per inference",
    "energy": "energy per inference",
    "accuracy": "accuracy on device",
    "bit_exact": "bit-exact outputs",
    "max_abs_error": "max abs error vs host",
    "flash": "flash",
    "ram": "RAM",
    "model_size": "model size",
    "model_file": "model file",
    "build": "firmware build",
}
#: findings that say what changed underneath a result (not a measured metric)
PROVENANCE_METRICS = ("model_file", "build")
MAD_TO_SIGMA = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal noise


@dataclass
class Comparison:
    """A run compared with its baseline (``baseline`` None: nothing to compare with)."""

    current: RunRecord
    baseline: RunRecord | None
    findings: list[Finding] = field(default_factory=list)
    baseline_reason: str = ""  # "pinned", "last passing nightly", "given", or why there is none
    stored: bool = False  # read back from the store (judged when the run ran), not computed now

    def of(self, *severities: str) -> list[Finding]:
        return [f for f in self.findings if f.severity in severities]

    @property
    def regressions(self) -> list[Finding]:
        return self.of("regression")

    def to_json(self) -> dict[str, Any]:
        counts = {s: len(self.of(s)) for s in ("regression", "changed", "improved", "noise", "new", "missing")}
        return {
            "current": self.current.to_dict(),
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "baseline_reason": self.baseline_reason,
            "regressions": counts["regression"],
            "counts": counts,
            "findings": [finding_json(f) for f in self.findings],
        }


def finding_json(finding: Finding) -> dict[str, Any]:
    return {**finding.to_dict(), "label": METRIC_LABELS.get(finding.metric, finding.metric),
            "sentence": sentence(finding)}


# --------------------------------------------------------------------------- baseline


def choose_baseline(store: ResultsStore, run: RunRecord) -> tuple[RunRecord | None, str]:
    """(baseline, why): the pinned run, else the last passing nightly before ``run``.

    An aborted run (its process gone before it finished) is never a baseline, pinned or not.
    """
    pinned = store.pinned_baseline()
    if pinned is not None and pinned != run.id:
        candidate = store.run(pinned)
        if candidate.status != RunStatus.ABORTED:
            return candidate, "pinned"
        skipped = f" (pinned run {pinned} was aborted)"
    else:
        skipped = ""
    last = store.last_passing_run("nightly", before=run.id)
    if last is not None:
        return last, "last passing nightly" + skipped
    return None, "no passing nightly before this run" + skipped


def compare_runs(store: ResultsStore, baseline: RunRecord | None, current: RunRecord, thresholds: Thresholds,
                 reason: str = "given") -> Comparison:
    if baseline is None:
        return Comparison(current, None, [], reason)
    findings = compare_records(store.results_for_run(baseline.id), store.results_for_run(current.id), thresholds)
    return Comparison(current, baseline, findings, reason)


def compare_with_baseline(store: ResultsStore, run: RunRecord, thresholds: Thresholds) -> Comparison:
    """``run`` compared with the baseline :func:`choose_baseline` picks, without storing anything."""
    baseline, reason = choose_baseline(store, run)
    return compare_runs(store, baseline, run, thresholds, reason)


def stored_comparison(store: ResultsStore, run: RunRecord) -> Comparison | None:
    """The comparison :func:`judge` stored with ``run`` when it ran, or None if it was not judged."""
    findings = store.findings_for_run(run.id)
    if run.baseline_id is None and run.regressions is None and not findings:
        return None
    baseline = store.run(run.baseline_id) if run.baseline_id is not None else None
    return Comparison(run, baseline, findings, (run.details or {}).get("baseline_reason", ""), stored=True)


def judge(store: ResultsStore, run_id: int, thresholds: Thresholds) -> Comparison:
    """Compare run ``run_id`` with its baseline and store the findings with the run (what the nightly does)."""
    run = store.run(run_id)
    baseline, reason = choose_baseline(store, run)
    comparison = compare_runs(store, baseline, run, thresholds, reason)
    store.set_comparison(run_id, baseline.id if baseline else None, comparison.findings)
    store.update_run_details(run_id, baseline_reason=reason)
    return comparison


# --------------------------------------------------------------------------- the rules


def compare_records(before: Sequence[ResultRecord], after: Sequence[ResultRecord],
                    thresholds: Thresholds) -> list[Finding]:
    """Every finding between two sets of results, in the order of ``after`` (then what went missing).

    A combination measured twice in one run counts with its last result.
    """
    old = {_key(r): r for r in before}
    new = {_key(r): r for r in after}
    findings: list[Finding] = []
    for key, b in new.items():
        a = old.get(key)
        if a is None:
            findings.append(_finding(b, "status", "new", None, b.status, reason="not in the baseline"))
            continue
        findings += _compare_pair(a, b, thresholds.for_result(*key))
    for key, a in old.items():
        if key not in new:
            findings.append(_finding(a, "status", "missing", a.status, None, reason="in the baseline, not in this run"))
    return findings


def _key(r: ResultRecord) -> tuple[str, str, str]:
    return (r.device, r.model, r.variant)


def _finding(r: ResultRecord, metric: str, severity: str, before: Any, after: Any, *, unit: str | None = None,
             pct: float | None = None, reason: str = "") -> Finding:
    return Finding(device=r.device, model=r.model, variant=r.variant, metric=metric, severity=severity,
                   before=before, after=after, unit=unit, change_pct=pct, reason=reason)


def _pct(before: float, after: float) -> float | None:
    if before == 0:
        return None if after == 0 else math.inf
    return (after - before) / abs(before) * 100.0


def _compare_pair(a: ResultRecord, b: ResultRecord, rules: Rules) -> list[Finding]:
    if a.status != b.status:
        if a.status == "ok":
            why = f"was ok, now {b.status}" + (f": {b.message}" if b.message else "")
            return [_finding(b, "status", "regression", a.status, b.status, reason=why)]
        if b.status == "ok":
            return [_finding(b, "status", "improved", a.status, b.status, reason=f"was {a.status}, now ok")]
        return [_finding(b, "status", "changed", a.status, b.status, reason=b.message or "")]
    if a.status != "ok":
        return []  # not ok in both: nothing was measured to compare
    out: list[Finding] = []
    for check in _CHECKS:
        finding = check(a, b, rules)
        if finding is not None:
            out.append(finding)
    if out:  # say what changed underneath, so a regression names its likely cause
        out += _provenance(a, b)
    return out


def _provenance(a: ResultRecord, b: ResultRecord) -> list[Finding]:
    out = []
    if a.model_sha256 and b.model_sha256 and a.model_sha256 != b.model_sha256:
        out.append(_finding(b, "model_file", "changed", a.model_sha256[:12], b.model_sha256[:12],
                            reason="the .tflite changed (sha256)"))
    if (a.compiler_flags, a.compiler) != (b.compiler_flags, b.compiler) and a.compiler_flags and b.compiler_flags:
        old, new = set(a.compiler_flags.split()), set(b.compiler_flags.split())
        gone, came = " ".join(f for f in a.compiler_flags.split() if f not in new), \
            " ".join(f for f in b.compiler_flags.split() if f not in old)
        what = f"flags {gone or '-'} -> {came or '-'}" if (gone or came) else f"compiler {a.compiler} -> {b.compiler}"
        out.append(_finding(b, "build", "changed", a.compiler_flags, b.compiler_flags,
                            reason=f"the firmware is built differently: {what}"))
    elif a.elf_sha256 and b.elf_sha256 and a.elf_sha256 != b.elf_sha256:
        out.append(_finding(b, "build", "changed", a.elf_sha256[:12], b.elf_sha256[:12],
                            reason="the ELF changed (model code, kernels or harness)"))
    return out


def _count(a: ResultRecord, b: ResultRecord, rules: Rules) -> Finding | None:
    if a.count_median is None or b.count_median is None:
        return None
    if a.unit != b.unit:
        return _finding(b, "count", "changed", a.count_median, b.count_median, unit=b.unit,
                        reason=f"the unit changed from {a.unit} to {b.unit}: not comparable")
    before, after = float(a.count_median), float(b.count_median)
    if before == after:
        return None
    pct = _pct(before, after)
    if b.unit == "cycles":
        band = noise_band(a, b, rules.count.board_band_mads)
        limit = rules.count.board_fail_pct
        if abs(after - before) <= band:
            return _finding(b, "count", "noise", before, after, unit=b.unit, pct=pct,
                            reason=f"within the noise band of ±{band:,.1f} cycles "
                                   f"({rules.count.board_band_mads:g} x 1.4826 x MAD of the windows)")
        outside = f"outside the noise band of ±{band:,.1f} cycles"
    else:
        limit = rules.count.emulated_fail_pct
        outside = "emulator counts are exact"
    if after > before and (pct is None or pct > limit):
        return _finding(b, "count", "regression", before, after, unit=b.unit, pct=pct,
                        reason=f"slower by more than {limit:g}% ({outside})")
    severity = "changed" if after > before else "improved"
    return _finding(b, "count", severity, before, after, unit=b.unit, pct=pct,
                    reason=f"{'slower' if after > before else 'faster'}, within the {limit:g}% threshold ({outside})"
                    if severity == "changed" else f"faster ({outside})")


def noise_band(a: ResultRecord, b: ResultRecord, k: float) -> float:
    """k x 1.4826 x the combined MAD of both runs' timed windows (from min/max when windows are not stored)."""
    return k * MAD_TO_SIGMA * math.hypot(_mad(a), _mad(b))


def _mad(r: ResultRecord) -> float:
    windows = r.window_counts
    if windows and len(windows) >= 2:
        median = statistics.median(windows)
        return float(statistics.median(abs(w - median) for w in windows))
    if r.count_min is not None and r.count_max is not None:
        return (r.count_max - r.count_min) / 2.0  # no windows stored: the half range stands in for the MAD
    return 0.0


def _energy(a: ResultRecord, b: ResultRecord, rules: Rules) -> Finding | None:
    if a.energy_uj is None or b.energy_uj is None or a.energy_uj == b.energy_uj:
        return None
    pct = _pct(a.energy_uj, b.energy_uj)
    if is_modelled(b.energy_source):
        severity = "changed" if b.energy_uj > a.energy_uj else "improved"
        return _finding(b, "energy", severity, a.energy_uj, b.energy_uj, unit="µJ", pct=pct,
                        reason="modelled from the count (the count rule decides)")
    limit = rules.energy.measured_fail_pct
    if pct is not None and pct > limit:
        return _finding(b, "energy", "regression", a.energy_uj, b.energy_uj, unit="µJ", pct=pct,
                        reason=f"measured energy grew by more than {limit:g}%")
    if pct is not None and pct < -limit:
        return _finding(b, "energy", "improved", a.energy_uj, b.energy_uj, unit="µJ", pct=pct, reason="measured")
    return _finding(b, "energy", "noise", a.energy_uj, b.energy_uj, unit="µJ", pct=pct,
                    reason=f"measured, within ±{limit:g}%")


def _accuracy(a: ResultRecord, b: ResultRecord, rules: Rules) -> Finding | None:
    if a.accuracy_device is None or b.accuracy_device is None or a.accuracy_device == b.accuracy_device:
        return None
    if b.message and "latency-only" in b.message:
        return None  # trained on generated data: its accuracy means nothing
    metric = b.metric or "accuracy"
    before, after = float(a.accuracy_device), float(b.accuracy_device)
    higher_is_better = metric == "accuracy"
    worse = (before - after) if higher_is_better else (after - before)
    limit = rules.accuracy.max_drop if higher_is_better else rules.accuracy.max_error_increase
    if worse > limit:
        what = "dropped" if higher_is_better else "grew"
        return _finding(b, "accuracy", "regression", before, after, unit=metric, pct=_pct(before, after),
                        reason=f"{metric} {what} by {abs(worse):.4g}, more than {limit:g}")
    return _finding(b, "accuracy", "changed" if worse > 0 else "improved", before, after, unit=metric,
                    pct=_pct(before, after), reason=f"within {limit:g}" if worse > 0 else "")


def _bit_exact(a: ResultRecord, b: ResultRecord, rules: Rules) -> Finding | None:
    if a.bit_exact_fraction is None or b.bit_exact_fraction is None or a.bit_exact_fraction == b.bit_exact_fraction:
        return None
    drop = a.bit_exact_fraction - b.bit_exact_fraction
    limit = rules.bit_exact.max_drop
    if b.variant != "int8":  # float variants are held to a tolerance, not to bit-exactness
        return _finding(b, "bit_exact", "changed", a.bit_exact_fraction, b.bit_exact_fraction, unit="fraction",
                        reason="float variant: judged by max abs error")
    if drop > limit:
        return _finding(b, "bit_exact", "regression", a.bit_exact_fraction, b.bit_exact_fraction, unit="fraction",
                        reason=f"fewer outputs bit-exact with tflite-micro (may drop by {limit:g})")
    return _finding(b, "bit_exact", "changed" if drop > 0 else "improved", a.bit_exact_fraction,
                    b.bit_exact_fraction, unit="fraction")


def _max_abs_error(a: ResultRecord, b: ResultRecord, rules: Rules) -> Finding | None:
    if a.max_abs_error is None or b.max_abs_error is None or a.max_abs_error == b.max_abs_error:
        return None
    if b.variant == "int8":
        return None  # int8 is judged by bit-exactness
    grew = b.max_abs_error - a.max_abs_error
    limit = rules.float_error.max_increase
    if grew > limit:
        return _finding(b, "max_abs_error", "regression", a.max_abs_error, b.max_abs_error, unit="abs",
                        reason=f"grew by {grew:.3g}, more than {limit:g}")
    return _finding(b, "max_abs_error", "changed" if grew > 0 else "improved", a.max_abs_error, b.max_abs_error,
                    unit="abs", reason=f"within {limit:g}" if grew > 0 else "")


def _footprint(metric: str, attr: str, rule: str) -> Callable[[ResultRecord, ResultRecord, Rules], Finding | None]:
    def check(a: ResultRecord, b: ResultRecord, rules: Rules) -> Finding | None:
        before, after = getattr(a, attr), getattr(b, attr)
        if before is None or after is None or before == after:
            return None
        pct = _pct(before, after)
        limit = getattr(rules.footprint, rule)
        if after > before and (pct is None or pct > limit):
            return _finding(b, metric, "regression", before, after, unit="bytes", pct=pct,
                            reason=f"grew by more than {limit:g}%")
        return _finding(b, metric, "changed" if after > before else "improved", before, after, unit="bytes",
                        pct=pct, reason=f"within {limit:g}%" if after > before else "")

    return check


_CHECKS: tuple[Callable[[ResultRecord, ResultRecord, Rules], Finding | None], ...] = (
    _count,
    _energy,
    _accuracy,
    _bit_exact,
    _max_abs_error,
    _footprint("flash", "flash_bytes", "flash_growth_pct"),
    _footprint("ram", "ram_bytes", "ram_growth_pct"),
    _footprint("model_size", "model_size_bytes", "model_size_growth_pct"),
)


# --------------------------------------------------------------------------- words


def format_value(metric: str, value: Any, unit: str | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:39] + "…"
    if metric == "count":
        return f"{value:,.0f} {unit}" if unit else f"{value:,.0f}"
    if metric in ("flash", "ram", "model_size"):
        return f"{value:,.0f} B"
    if metric == "energy":
        return f"{value:.4g} µJ"
    if metric == "bit_exact":
        return f"{value:.1%}"
    if metric == "accuracy":
        return f"{unit or ''} {value:.4f}".strip()
    return f"{value:.3g}"


def format_pct(pct: float | None) -> str:
    if pct is None:
        return ""
    if math.isinf(pct):
        return "new"
    return f"{pct:+.1f}%"


def sentence(f: Finding) -> str:
    """``qemu-m4f sine/float32 count per inference: 2,767 -> 26,632 instructions (+862.5%): slower by ...``"""
    label = METRIC_LABELS.get(f.metric, f.metric)
    before_unit = None if f.metric == "count" else f.unit  # "2,767 -> 26,632 instructions"
    change = f"{format_value(f.metric, f.before, before_unit)} -> {format_value(f.metric, f.after, f.unit)}"
    pct = format_pct(f.change_pct)
    text = f"{f.device} {f.model}/{f.variant} {label}: {change}" + (f" ({pct})" if pct else "")
    return text + (f": {f.reason}" if f.reason else "")


def group_by_key(findings: Iterable[Finding]) -> dict[tuple[str, str, str], list[Finding]]:
    out: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        out.setdefault(f.key, []).append(f)
    return out


# --------------------------------------------------------------------------- JUnit


def add_to_junit(path: Any, comparison: Comparison, records: Sequence[ResultRecord]) -> None:
    """Add a ``farm.judge.regression`` test suite to the JUnit XML that pytest wrote at ``path``: one test
    case per (device, model, variant) of the run, failing with its regressions, so that CI systems
    show a regression like a failed test."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(path)
    root = tree.getroot()
    if root.tag != "testsuites":  # an old-style file with a lone <testsuite>
        wrapper = ET.Element("testsuites")
        wrapper.append(root)
        root = wrapper
        tree = ET.ElementTree(root)
    by_key = group_by_key(comparison.findings)
    keys = list(dict.fromkeys(_key(r) for r in records))
    suite = ET.SubElement(root, "testsuite", name="farm.judge.regression", tests=str(len(keys)), errors="0", skipped="0",
                          failures=str(sum(any(f.severity == "regression" for f in by_key.get(k, [])) for k in keys)),
                          time="0")
    base = comparison.baseline
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="baseline", value=str(base.id) if base else "none")
    ET.SubElement(props, "property", name="baseline_reason", value=comparison.baseline_reason)
    for key in keys:
        device, model, variant = key
        case = ET.SubElement(suite, "testcase", classname=f"farm.judge.regression.{device}", name=f"{model}/{variant}",
                             time="0")
        found = by_key.get(key, [])
        bad = [f for f in found if f.severity == "regression"]
        if bad:
            failure = ET.SubElement(case, "failure", message="; ".join(sentence(f) for f in bad)[:500])
            failure.text = "\n".join(sentence(f) for f in bad)
        others = [f for f in found if f.severity != "regression"]
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(f"{f.severity}: {sentence(f)}" for f in others)
    tree.write(path, encoding="utf-8", xml_declaration=True)
