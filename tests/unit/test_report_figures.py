"""The figures the reports derive, computed once (farm.store.figures), the status colours of
the HTML report, and a report that only renders: it says when a run was not judged."""

from __future__ import annotations

from pathlib import Path

from farm.config.thresholds import defaults
from farm.judge.regression import compare_with_baseline
from farm.measure.bench import fill_speedups
from farm.store.figures import float32_counts, is_modelled, speedup, speedup_vs_float32
from farm.report.html import STATUS_COLOURS, write_report
from farm.store.results import ResultRecord, ResultsStore
from farm.store.status import CellStatus, Status


def rec(device: str, variant: str, count: float | None, status: str = "ok", model: str = "sine") -> ResultRecord:
    return ResultRecord(device=device, model=model, variant=variant, status=status, unit="instructions",
                        count_median=count)


def test_speedup_vs_float32_is_the_float32_count_over_the_variants_on_the_same_board() -> None:
    rows = [rec("m3", "float32", 26632.0), rec("m3", "int8", 4338.0), rec("m3", "int8-weights", 43808.0),
            rec("m4f", "float32", 2767.0), rec("m4f", "int8", 4335.0, status="error"),  # not ok: no figure
            rec("rv32", "int8", 4824.0),  # no float32 on this board
            rec("m3", "int8", 100.0, model="kws")]  # another model
    base = float32_counts(rows)
    assert base == {("m3", "sine"): 26632.0, ("m4f", "sine"): 2767.0}
    assert [speedup_vs_float32(r, base) for r in rows] == [None, 26632 / 4338, 26632 / 43808, None, None, None,
                                                           None]
    assert speedup(None, 3.0) is None and speedup(3.0, 0) is None and speedup(6.0, 3.0) == 2.0


def test_the_bench_uses_the_same_speedup() -> None:
    class Row:
        def __init__(self, device: str, variant: str, count: float | None) -> None:
            self.device, self.model, self.variant, self.count_per_inference = device, "kws", variant, count
            self.speedup_vs_float32: float | None = None

    rows = [Row("m3", "float32", 2000.0), Row("m3", "int8", 100.0), Row("m3", "int8-weights", None)]
    fill_speedups(rows)  # type: ignore[arg-type]
    assert [r.speedup_vs_float32 for r in rows] == [None, 20.0, None]


def test_modelled_energy_is_one_predicate() -> None:
    assert is_modelled("modelled: 200 uA/MHz x 3.3 V x instructions (datasheet model, not measured)")
    assert not is_modelled("ppk2 on /dev/ttyACM0") and not is_modelled(None) and not is_modelled("")


def test_every_status_and_portability_cell_has_a_colour() -> None:
    missing = [s.value for s in (*Status, *CellStatus) if s not in STATUS_COLOURS]
    assert not missing, f"no colour for {missing}"
    assert STATUS_COLOURS["infra-error"] != STATUS_COLOURS["error"]  # not a verdict on the firmware


def test_the_report_says_when_a_run_was_not_judged(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    first = store.start_run("nightly")
    store.add_result(first, rec("qemu-m3", "int8", 4338.0))
    store.set_comparison(first, None, [])
    store.finish_run(first, "passed")
    run = store.start_run("run")
    store.add_result(run, rec("qemu-m3", "int8", 5100.0))
    store.add_result(run, rec("qemu-m3", "float32", None, status="faulted"))
    store.finish_run(run, "passed")

    html = write_report(store, run, tmp_path / "plain.html", thresholds=defaults()).read_text()
    assert "not judged: no comparison was stored for this run" in html and "This run was not judged" in html
    assert 'data-regressions="0"' in html
    assert store.findings_for_run(run) == []  # the report judged nothing, stored nothing

    computed = compare_with_baseline(store, store.run(run), defaults())  # what `farm report` may pass
    html = write_report(store, run, tmp_path / "computed.html", thresholds=defaults(),
                        comparison=computed).read_text()
    assert "computed for this report (the run was not judged when it ran)" in html
    assert 'data-regressions="1"' in html and "last passing nightly" in html
    assert store.findings_for_run(run) == [] and store.run(run).baseline_id is None

    judged = write_report(store, first, tmp_path / "first.html", thresholds=defaults()).read_text()
    assert "judged by the nightly when it ran" in judged
    store.close()


def test_a_run_whose_every_result_failed_still_renders(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    run = store.start_run("nightly")
    for variant in ("float32", "int8"):
        store.add_result(run, rec("qemu-m3", variant, None, status="infra-error"))
    store.finish_run(run, "failed")
    html = write_report(store, run, tmp_path / "r.html", thresholds=defaults()).read_text()
    assert f"background:{STATUS_COLOURS['infra-error']}" in html
    store.close()
