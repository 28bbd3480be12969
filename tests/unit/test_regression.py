"""Regression rules (farm.judge.regression) and their thresholds (farm.config.thresholds), on crafted results."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from farm.judge.regression import Comparison, add_to_junit, compare_records, sentence
from farm.store.results import ResultRecord, RunRecord
from farm.config.thresholds import ThresholdsError, defaults, load_thresholds

REPO = Path(__file__).resolve().parents[2]


def rec(device: str = "qemu-m3", variant: str = "int8", **changes: object) -> ResultRecord:
    base = ResultRecord(
        device=device, model="sine", variant=variant, status="ok", unit="instructions", count_median=4338.0,
        count_min=4338, count_max=4338, windows=5, window_counts=[4338.0] * 5, latency_us=173.5,
        latency_is_estimate=True, energy_uj=2.863, energy_source="modelled: 200 uA/MHz x 3.3 V x instructions",
        metric="mae", accuracy_device=0.0250, accuracy_host=0.0250, bit_exact_fraction=1.0, max_abs_error=0.0,
        flash_bytes=5856, ram_bytes=10624, model_size_bytes=2592, model_sha256="a" * 64, elf_sha256="b" * 64,
        compiler="arm-none-eabi-gcc 12.2.1", compiler_flags="-mcpu=cortex-m3 -mthumb -mfloat-abi=soft -O2",
    )
    return dataclasses.replace(base, **changes)


def board(windows: list[float], **changes: object) -> ResultRecord:
    """A real board: cycles, with window spread."""
    import statistics

    return rec(device="nucleo-f411", unit="cycles", window_counts=windows, count_median=statistics.median(windows),
               count_min=min(windows), count_max=max(windows), latency_is_estimate=False, **changes)


def only(findings: list, metric: str | None = None):
    chosen = [f for f in findings if metric is None or f.metric == metric]
    assert len(chosen) == 1, chosen
    return chosen[0]


T = defaults()


def test_identical_results_give_no_finding():
    assert compare_records([rec(), rec(variant="float32")], [rec(), rec(variant="float32")], T) == []


def test_emulator_counts_any_change_is_reported_the_threshold_decides():
    small = compare_records([rec()], [rec(count_median=4380.0)], T)  # +0.97%
    f = only(small, "count")
    assert (f.severity, f.before, f.after, f.unit) == ("changed", 4338.0, 4380.0, "instructions")
    assert f.change_pct == pytest.approx(0.968, abs=1e-3)
    big = only(compare_records([rec()], [rec(count_median=4800.0, elf_sha256="c" * 64)], T), "count")
    assert big.severity == "regression"
    assert sentence(big) == ("qemu-m3 sine/int8 count per inference: 4,338 -> 4,800 instructions (+10.7%): "
                             "slower by more than 2% (emulator counts are exact)")
    faster = only(compare_records([rec()], [rec(count_median=4000.0)], T), "count")
    assert faster.severity == "improved" and faster.change_pct < 0


def test_regressions_name_what_changed_underneath():
    slower = rec(count_median=9000.0, compiler_flags="-mcpu=cortex-m3 -mthumb -mfloat-abi=soft -O0")
    findings = compare_records([rec()], [slower], T)
    build = only(findings, "build")
    assert build.severity == "changed" and "flags -O2 -> -O0" in build.reason
    other = compare_records([rec()], [rec(count_median=9000.0, elf_sha256="c" * 64, model_sha256="d" * 64)], T)
    assert {f.metric for f in other} == {"count", "build", "model_file"}


def test_real_board_noise_does_not_fail_the_night():
    before = board([100_000, 100_900, 99_200, 100_400, 99_700])  # MAD 400 cycles
    noisy = board([101_000, 100_200, 101_600, 100_900, 101_300])  # +1% within 3 x 1.4826 x MAD band
    f = only(compare_records([before], [noisy], T), "count")
    assert f.severity == "noise" and "within the noise band" in f.reason
    small_but_real = board([103_500, 103_400, 103_600, 103_500, 103_550])  # +3.5%: outside the band, under 5%
    assert only(compare_records([before], [small_but_real], T), "count").severity == "changed"
    slower = board([112_000, 111_500, 112_400, 111_900, 112_100])  # +12%
    f = only(compare_records([before], [slower], T), "count")
    assert f.severity == "regression" and f.unit == "cycles" and "outside the noise band" in f.reason


def test_real_board_a_wide_spread_widens_the_band():
    before = board([100_000, 90_000, 110_000, 95_000, 105_000])  # MAD 5,000 cycles: a noisy board
    after = board([108_000, 98_000, 118_000, 103_000, 113_000])  # +8% median, inside 3 x 1.4826 x hypot(MADs)
    assert only(compare_records([before], [after], T), "count").severity == "noise"
    no_windows = dataclasses.replace(before, window_counts=None)  # older result: min/max give the spread
    assert only(compare_records([no_windows], [after], T), "count").severity == "noise"


def test_a_result_that_was_ok_and_now_is_not_is_a_regression():
    for status in ("faulted", "hung", "does-not-fit", "not-portable", "error"):
        broken = rec(status=status, message=f"because {status}", count_median=None)
        f = only(compare_records([rec()], [broken], T))
        assert (f.metric, f.severity, f.before, f.after) == ("status", "regression", "ok", status)
        assert f"was ok, now {status}: because {status}" in f.reason
    fixed = only(compare_records([rec(status="hung")], [rec()], T))
    assert (fixed.severity, fixed.after) == ("improved", "ok")
    assert compare_records([rec(status="hung")], [rec(status="hung")], T) == []


def test_new_and_missing_results():
    findings = compare_records([rec(variant="float32")], [rec(variant="int8")], T)
    assert [(f.variant, f.severity) for f in findings] == [("int8", "new"), ("float32", "missing")]


def test_accuracy_uses_absolute_thresholds():
    acc = dict(metric="accuracy", accuracy_device=0.96, accuracy_host=0.96)
    assert only(compare_records([rec(**acc)], [rec(**{**acc, "accuracy_device": 0.945})], T)).severity \
        == "regression"  # 1.5 points > 1 point
    assert only(compare_records([rec(**acc)], [rec(**{**acc, "accuracy_device": 0.955})], T)).severity == "changed"
    assert only(compare_records([rec()], [rec(accuracy_device=0.031)], T)).severity == "regression"  # mae +0.006
    assert only(compare_records([rec()], [rec(accuracy_device=0.027)], T)).severity == "changed"
    latency_only = dict(message="latency-only model (trained on generated data; accuracy not meaningful)")
    assert compare_records([rec(**latency_only)], [rec(accuracy_device=0.5, **latency_only)], T) == []


def test_bit_exactness_and_float_error():
    f = only(compare_records([rec()], [rec(bit_exact_fraction=0.98)], T))
    assert (f.metric, f.severity) == ("bit_exact", "regression")
    f32 = dict(variant="float32", bit_exact_fraction=None, max_abs_error=4.2e-7)
    assert only(compare_records([rec(**f32)], [rec(**{**f32, "max_abs_error": 5e-4})], T)).severity == "regression"
    assert only(compare_records([rec(**f32)], [rec(**{**f32, "max_abs_error": 5e-7})], T)).severity == "changed"


def test_footprint_growth_like_twister():
    f = only(compare_records([rec()], [rec(flash_bytes=6200)], T))  # +5.9%
    assert (f.metric, f.severity, f.unit) == ("flash", "regression", "bytes")
    assert only(compare_records([rec()], [rec(flash_bytes=6000)], T)).severity == "changed"  # +2.5%
    assert only(compare_records([rec()], [rec(ram_bytes=11200)], T)).severity == "regression"  # +5.4%
    assert only(compare_records([rec()], [rec(ram_bytes=10000)], T)).severity == "improved"
    assert only(compare_records([rec()], [rec(model_size_bytes=3000)], T)).severity == "regression"


def test_energy_modelled_follows_the_count_measured_has_its_threshold():
    f = only(compare_records([rec()], [rec(energy_uj=3.2)], T))
    assert (f.metric, f.severity) == ("energy", "changed")  # modelled: never fails on its own
    measured = dict(energy_source="measured: PPK2 at 3.0 V")
    assert only(compare_records([rec(**measured)], [rec(energy_uj=3.3, **measured)], T)).severity == "regression"
    assert only(compare_records([rec(**measured)], [rec(energy_uj=2.95, **measured)], T)).severity == "noise"


def test_thresholds_file_overrides_per_device(tmp_path: Path):
    path = tmp_path / "t.toml"
    path.write_text("""
[count]
emulated_fail_pct = 10.0

[[override]]
device = "qemu-rv32"
[override.count]
emulated_fail_pct = 0.5
""")
    t = load_thresholds(path)
    assert t.source == str(path) and t.for_result("qemu-m3", "sine", "int8").count.emulated_fail_pct == 10.0
    assert t.for_result("qemu-rv32", "sine", "int8").count.emulated_fail_pct == 0.5
    assert t.for_result("qemu-rv32", "sine", "int8").footprint == T.rules.footprint
    m3 = only(compare_records([rec()], [rec(count_median=4600.0)], t))  # +6%
    rv = only(compare_records([rec(device="qemu-rv32")], [rec(device="qemu-rv32", count_median=4370.0)], t))
    assert (m3.severity, rv.severity) == ("changed", "regression")


def test_thresholds_errors_name_the_file_and_the_key(tmp_path: Path):
    path = tmp_path / "t.toml"
    path.write_text("[count]\nemulated_fail = 1\n")
    with pytest.raises(ThresholdsError, match=r"t.toml: count.emulated_fail: unknown key"):
        load_thresholds(path)
    path.write_text("[count]\nemulated_fail_pct = -1\n")
    with pytest.raises(ThresholdsError, match=r"t.toml: count.emulated_fail_pct: Input should be greater"):
        load_thresholds(path)
    path.write_text("[[override]]\ndevice='x'\n[override.footprint]\nflash_pct = 1\n")
    with pytest.raises(ThresholdsError, match=r"t.toml: override.1.footprint.flash_pct: unknown key"):
        load_thresholds(path)
    path.write_text("[[override]]\n[override.count]\nemulated_fail_pct = 1\n")
    with pytest.raises(ThresholdsError, match="name at least one of device, model, variant"):
        load_thresholds(path)
    path.write_text("[count\n")
    with pytest.raises(ThresholdsError, match="not valid TOML"):
        load_thresholds(path)
    with pytest.raises(ThresholdsError, match="thresholds file not found"):
        load_thresholds(tmp_path / "missing.toml")


def test_the_shipped_thresholds_file_documents_the_defaults(monkeypatch: pytest.MonkeyPatch):
    shipped = load_thresholds(REPO / "farm-thresholds.toml")
    assert shipped.rules == defaults().rules and shipped.overrides == ()
    monkeypatch.delenv("FARM_THRESHOLDS", raising=False)
    monkeypatch.chdir(REPO)
    assert load_thresholds().source == "farm-thresholds.toml"


def test_junit_gets_a_regression_suite(tmp_path: Path):
    from datetime import UTC, datetime

    junit = tmp_path / "junit.xml"
    junit.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="1">'
                     '<testcase classname="test_sine" name="test_x" time="0.1"/></testsuite></testsuites>')
    now = datetime.now(UTC)
    run = RunRecord(id=2, kind="nightly", status="failed", started_at=now, finished_at=now, git_commit="b",
                    farm_version="0.1.0")
    base = dataclasses.replace(run, id=1, status="passed")
    after = [rec(count_median=9000.0), rec(variant="float32")]
    comparison = Comparison(run, base, compare_records([rec(), rec(variant="float32")], after, T), "pinned")
    add_to_junit(junit, comparison, after)
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"pytest", "farm.judge.regression"}
    suite = suites["farm.judge.regression"]
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases["sine/int8"].find("failure")
    assert failure is not None and "4,338 -> 9,000 instructions" in failure.get("message", "")
    assert cases["sine/float32"].find("failure") is None
