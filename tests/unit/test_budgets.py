"""Budgets (farm.project.budgets): the effective limits (device > variant > model), one check per
(model, variant, device, budget), and each budget judged on a measured ResultRecord into a
sentence — including every way a budget cannot be judged, which fails with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from farm.config.inventory import load_inventory
from farm.project.budgets import BudgetCheck, effective_limits, judge, limit_text, model_checks, project_checks
from farm.project.file import Budgets, load_project
from farm.store.records import ResultRecord

REPO = Path(__file__).resolve().parents[2]

BUDGETS = Budgets.model_validate({
    "latency_us": 5000, "energy_uj": 50, "accuracy_drop_max": 0.02, "flash_bytes_max": 262144,
    "variants": {"float32": {"latency_us": 20000, "ram_bytes_max": 65536}},
    "devices": {"qemu-rv32": {"latency_us": 40000, "accuracy_min": 0.9}},
})


@pytest.fixture(scope="module")
def devices() -> dict[str, Any]:
    inventory = load_inventory(REPO / "devices.yaml")
    return {d.name: d for d in inventory.devices}


@pytest.fixture
def m3_50mhz(devices: dict[str, Any]) -> Any:
    return devices["qemu-m3"].model_copy(update={"clock_hz": 50_000_000})


def record(**kw: Any) -> ResultRecord:
    base: dict[str, Any] = dict(device="qemu-m3", model="my-model", variant="int8", status="ok", unit="instructions",
                                count_median=40620.0, count_min=40620, count_max=40620, latency_is_estimate=True,
                                energy_uj=0.0123, energy_source="modelled: 200 uA/MHz x 3.3 V x instructions "
                                "(datasheet model, not measured)", metric="accuracy", accuracy_device=0.95,
                                accuracy_host=0.95, flash_bytes=20000, ram_bytes=9000,
                                details={"float_kind": "float-free"})
    base.update(kw)
    return ResultRecord(**base)


def check(budget: str, limit: Any, *, variant: str = "int8", device: str = "qemu-m3") -> BudgetCheck:
    return BudgetCheck("my-model", variant, device, budget, limit)


# --------------------------------------------------------------------------- limits and checks


def test_device_overrides_variant_overrides_model() -> None:
    assert effective_limits(BUDGETS, "int8", "qemu-m3")["latency_us"] == 5000  # the model's
    assert effective_limits(BUDGETS, "float32", "qemu-m3")["latency_us"] == 20000  # the variant's
    assert effective_limits(BUDGETS, "float32", "qemu-rv32")["latency_us"] == 40000  # the device's wins
    assert effective_limits(BUDGETS, "float32", "qemu-m3")["ram_bytes_max"] == 65536
    assert "ram_bytes_max" not in effective_limits(BUDGETS, "int8", "qemu-m3")
    assert "accuracy_min" not in effective_limits(BUDGETS, "int8", "qemu-m3")
    assert effective_limits(BUDGETS, "int8", "qemu-rv32")["accuracy_min"] == 0.9
    assert effective_limits(None, "int8", "qemu-m3") == {}


def test_portable_false_is_not_a_budget() -> None:
    budgets = Budgets.model_validate({"portable": True, "devices": {"qemu-m4f": {"portable": False}}})
    assert effective_limits(budgets, "int8", "qemu-m3") == {"portable": True}
    assert effective_limits(budgets, "int8", "qemu-m4f") == {}


def test_one_check_per_model_variant_device_budget() -> None:
    checks = model_checks("my-model", ("float32", "int8"), BUDGETS, ["qemu-m3", "qemu-rv32"])
    ids = {c.test_id for c in checks}
    assert "my-model-int8-qemu-m3-latency_us" in ids
    assert "my-model-int8-qemu-rv32-accuracy_min" in ids and "my-model-int8-qemu-m3-accuracy_min" not in ids
    assert "my-model-int8-qemu-m3-accuracy_drop_max" in ids
    assert not any(c.variant == "float32" and c.budget == "accuracy_drop_max" for c in checks), \
        "float32 is the reference of the drop: no check against itself"
    assert {c.limit for c in checks if c.budget == "latency_us" and c.variant == "float32"} == {20000, 40000}
    assert len(ids) == len(checks)


def test_project_checks_of_a_project_file(tmp_path: Path) -> None:
    project_file = tmp_path / "tinyfarm.yaml"
    project_file.write_text("models:\n  sine:\n    source: {zoo: sine}\n    variants: [float32, int8]\n"
                            "    budgets:\n      latency_us: 800\n      devices: {qemu-m4f: {latency_us: 400}}\n")
    project = load_project(project_file, ["qemu-m3", "qemu-m4f"])
    checks = project_checks(project, ["qemu-m3", "qemu-m4f"])
    assert {(c.variant, c.device, c.limit) for c in checks} == {
        ("float32", "qemu-m3", 800), ("int8", "qemu-m3", 800), ("float32", "qemu-m4f", 400), ("int8", "qemu-m4f", 400)}
    assert project_checks(project, ["qemu-m3"], models=["digits"]) == []  # narrowed to the active models
    assert project_checks(None, ["qemu-m3"]) == []


def test_limit_texts() -> None:
    assert limit_text("latency_us", 40000) == "40,000 µs"
    assert limit_text("latency_count", 2000000, "instructions") == "2,000,000 instructions"
    assert limit_text("flash_bytes_max", 262144) == "262,144 B"
    assert limit_text("energy_uj", 0.5) == "0.5 µJ"
    assert limit_text("accuracy_min", 0.9) == "0.9"


# --------------------------------------------------------------------------- latency and count


def test_latency_over_budget_says_count_clock_and_unit(m3_50mhz: Any) -> None:
    verdict = judge(check("latency_us", 500), record(), m3_50mhz)
    assert not verdict.passed
    assert verdict.sentence == "my-model/int8 on qemu-m3: latency 812.4 µs (40,620 instructions at 50 MHz) " \
                               "> budget 500 µs"
    assert verdict.measured == pytest.approx(812.4)


def test_latency_within_budget_passes(m3_50mhz: Any) -> None:
    verdict = judge(check("latency_us", 812.4), record(), m3_50mhz)
    assert verdict.passed and "<= budget 812.4 µs" in verdict.sentence


def test_latency_count_in_the_boards_unit(m3_50mhz: Any) -> None:
    verdict = judge(check("latency_count", 40000), record(), m3_50mhz)
    assert not verdict.passed
    assert verdict.sentence.endswith("count per inference 40,620 instructions > budget 40,000 instructions")
    assert judge(check("latency_count", 50000), record(unit="cycles"), m3_50mhz).passed


def test_a_result_that_did_not_run_fails_the_budget_with_its_status(m3_50mhz: Any) -> None:
    hung = record(status="hung", message="no answer after 30 s", count_median=None, energy_uj=None)
    for budget, limit in (("latency_us", 500), ("energy_uj", 1), ("accuracy_min", 0.5)):
        verdict = judge(check(budget, limit), hung, m3_50mhz)
        assert not verdict.passed and not verdict.judged
        assert "cannot be judged: the measurement is hung: no answer after 30 s" in verdict.sentence


def test_not_measured_fails(m3_50mhz: Any) -> None:
    verdict = judge(check("latency_us", 500), None, m3_50mhz)
    assert not verdict.passed and verdict.sentence.endswith("cannot be judged: not measured in this run")


# --------------------------------------------------------------------------- energy


def test_energy_says_modelled(devices: dict[str, Any]) -> None:
    verdict = judge(check("energy_uj", 50), record(), devices["qemu-m3"])
    assert verdict.passed
    assert "0.0123 µJ per inference (modelled from the count, not measured) <= budget 50 µJ" in verdict.sentence


def test_energy_says_measured(devices: dict[str, Any]) -> None:
    verdict = judge(check("energy_uj", 0.01), record(energy_source="ppk2 serial 123, 100 kS/s"), devices["qemu-m3"])
    assert not verdict.passed
    assert "(measured: ppk2 serial 123, 100 kS/s) > budget 0.01 µJ" in verdict.sentence


def test_energy_on_a_board_without_an_energy_figure_fails(devices: dict[str, Any]) -> None:
    board = devices["qemu-m3"].model_copy(update={"power": None})
    verdict = judge(check("energy_uj", 50), record(energy_uj=None, energy_source=None), board)
    assert not verdict.passed and not verdict.judged
    assert "energy per inference budget 50 µJ cannot be judged: qemu-m3 has no energy figure" in verdict.sentence


# --------------------------------------------------------------------------- accuracy


def test_accuracy_min(m3_50mhz: Any) -> None:
    assert judge(check("accuracy_min", 0.9), record(), m3_50mhz).passed
    verdict = judge(check("accuracy_min", 0.97), record(), m3_50mhz)
    assert not verdict.passed
    assert verdict.sentence == "my-model/int8 on qemu-m3: accuracy 0.9500 on the device (host 0.9500) < budget 0.97"


def test_accuracy_min_of_an_error_metric_cannot_be_judged(m3_50mhz: Any) -> None:
    verdict = judge(check("accuracy_min", 0.1), record(metric="mae", accuracy_device=0.05), m3_50mhz)
    assert not verdict.passed and "mae is an error (lower is better)" in verdict.sentence


def test_accuracy_of_a_latency_only_model_cannot_be_judged(m3_50mhz: Any) -> None:
    verdict = judge(check("accuracy_min", 0.1), record(details={"latency_only": True}), m3_50mhz)
    assert not verdict.passed and "not meaningful (latency-only" in verdict.sentence


def test_accuracy_drop_against_float32_on_the_same_board(m3_50mhz: Any) -> None:
    float32 = record(variant="float32", accuracy_device=0.99)
    verdict = judge(check("accuracy_drop_max", 0.02), record(), m3_50mhz, float32)
    assert not verdict.passed and verdict.measured == pytest.approx(0.04)
    assert verdict.sentence == ("my-model/int8 on qemu-m3: accuracy drop vs float32 0.0400 (0.9500 vs float32 "
                                "0.9900 on this board) > budget 0.02")
    assert judge(check("accuracy_drop_max", 0.05), record(), m3_50mhz, float32).passed


def test_accuracy_drop_of_an_error_metric_is_its_growth(m3_50mhz: Any) -> None:
    float32 = record(variant="float32", metric="mae", accuracy_device=0.10)
    int8 = record(metric="mae", accuracy_device=0.13)
    verdict = judge(check("accuracy_drop_max", 0.02), int8, m3_50mhz, float32)
    assert not verdict.passed and verdict.measured == pytest.approx(0.03)
    better = record(metric="mae", accuracy_device=0.09)  # less error than float32: no drop
    assert judge(check("accuracy_drop_max", 0.0), better, m3_50mhz, float32).passed


def test_accuracy_drop_without_a_float32_result_fails(m3_50mhz: Any) -> None:
    verdict = judge(check("accuracy_drop_max", 0.02), record(), m3_50mhz, None)
    assert not verdict.passed and "no float32 result of my-model on qemu-m3" in verdict.sentence
    broken = record(variant="float32", status="does-not-fit", message="needs 5 MiB flash", accuracy_device=None)
    verdict = judge(check("accuracy_drop_max", 0.02), record(), m3_50mhz, broken)
    assert not verdict.passed and "its float32 build on qemu-m3: the measurement is does-not-fit" in verdict.sentence


# --------------------------------------------------------------------------- flash, RAM, portability


def test_flash_and_ram_from_the_record_even_when_it_does_not_fit(m3_50mhz: Any) -> None:
    too_big = record(status="does-not-fit", message="flash 5,000,000 B > 4,194,304 B", flash_bytes=5_000_000,
                     ram_bytes=9000, count_median=None)
    verdict = judge(check("flash_bytes_max", 262144), too_big, m3_50mhz)
    assert not verdict.passed and verdict.sentence.endswith("flash 5,000,000 B > budget 262,144 B")
    assert judge(check("ram_bytes_max", 65536), too_big, m3_50mhz).passed
    no_build = record(status="error", message="codegen: unsupported op", flash_bytes=None, ram_bytes=None)
    verdict = judge(check("ram_bytes_max", 65536), no_build, m3_50mhz)
    assert not verdict.passed and "no firmware size: the measurement is error: codegen" in verdict.sentence


def test_portable(m3_50mhz: Any) -> None:
    verdict = judge(check("portable", True), record(), m3_50mhz)
    assert verdict.passed and "float-free" in verdict.sentence and "no FPU" in verdict.sentence
    soft = record(variant="float32", details={"float_kind": "soft-float"})
    assert judge(check("portable", True, variant="float32"), soft, m3_50mhz).passed
    refused = record(status="not-portable", message="vmul.f32 at 0x1234 in conv2d: the core has no FPU",
                     details={})
    verdict = judge(check("portable", True), refused, m3_50mhz)
    assert not verdict.passed and verdict.judged and "vmul.f32" in verdict.sentence
    unscanned = record(status="does-not-fit", message="too big", details={})
    verdict = judge(check("portable", True), unscanned, m3_50mhz)
    assert not verdict.passed and "the portability scan did not run: the measurement is does-not-fit" \
        in verdict.sentence



def test_a_verdict_as_plain_data(m3_50mhz: Any) -> None:
    data = judge(check("accuracy_drop_max", 0.02), record(), m3_50mhz, record(variant="float32")).to_dict()
    assert data["test"] == "my-model-int8-qemu-m3-accuracy_drop_max" and data["passed"] is True
    assert data["judged"] is True and data["measured"] == 0.0
    assert data["limit_text"] == "0.02" and data["budget"] == "accuracy_drop_max" and data["device"] == "qemu-m3"
    assert data["sentence"].startswith("my-model/int8 on qemu-m3: accuracy drop vs float32 0.0000")


# --------------------------------------------------------------------------- stored verdicts, terminal, report


def _stored_run(tmp_path: Path, m3_50mhz: Any) -> tuple[Any, int, list[dict[str, Any]]]:
    from farm.judge.budgets import store_verdict
    from farm.store.results import ResultsStore

    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.start_run("nightly")
    store.add_result(run_id, record())
    verdicts = [judge(check("latency_us", 500), record(), m3_50mhz).to_dict(),
                judge(check("flash_bytes_max", 262144), record(), m3_50mhz).to_dict()]
    for v in verdicts:
        store_verdict(store, run_id, v)
    store_verdict(store, run_id, verdicts[0])  # the same test again replaces its verdict
    return store, run_id, verdicts


def test_verdicts_are_stored_with_the_run_in_test_order(tmp_path: Path, m3_50mhz: Any) -> None:
    from farm.judge.budgets import broken, budgets_summary, stored_verdicts

    store, run_id, verdicts = _stored_run(tmp_path, m3_50mhz)
    stored = stored_verdicts(store.run(run_id))
    assert [v["test"] for v in stored] == ["my-model-int8-qemu-m3-latency_us", "my-model-int8-qemu-m3-flash_bytes_max"]
    assert stored == verdicts
    assert [v["budget"] for v in broken(stored)] == ["latency_us"]
    assert budgets_summary(stored) == "1 of 2 budgets broken"
    assert budgets_summary([verdicts[1]]) == "the 1 budget held" and budgets_summary([]) == "no budget judged"
    unjudged = judge(check("energy_uj", 1), record(energy_uj=None), m3_50mhz.model_copy(update={"power": None}))
    assert budgets_summary([*stored, unjudged.to_dict()]) == "2 of 3 budgets broken (1 could not be judged)"


def test_the_terminal_verdict_names_each_broken_budget(tmp_path: Path, m3_50mhz: Any) -> None:
    from rich.console import Console

    from farm.judge.budgets import stored_verdicts
    from farm.judge.regression import Comparison
    from farm.report.console import print_budgets, print_verdict

    store, run_id, _ = _stored_run(tmp_path, m3_50mhz)
    run = store.run(run_id)
    console = Console(record=True, width=200)
    budgets = stored_verdicts(run)
    print_budgets(console, budgets)
    print_verdict(console, run_id, "failed", Comparison(run, None, [], "no earlier nightly"), "1 failed", budgets)
    text = console.export_text()
    assert "BUDGET my-model/int8 on qemu-m3: latency 812.4 µs (40,620 instructions at 50 MHz) > budget 500 µs" in text
    assert "(my-model-int8-qemu-m3-latency_us)" in text
    assert "FAILED" in text and "1 of 2 budgets broken" in text
    assert "flash_bytes_max" not in text.split("broken budgets")[1].split("nightly run")[0]  # only the broken rows


def test_the_report_has_the_budgets_table_and_the_size_table(tmp_path: Path, m3_50mhz: Any) -> None:
    from farm.report.console import SIZE_TABLES_KEY, human_size, ratio_text
    from farm.report.html import write_report

    store, run_id, _ = _stored_run(tmp_path, m3_50mhz)
    store.update_run_details(run_id, **{SIZE_TABLES_KEY: {"my-model": [
        {"label": "SavedModel directory", "bytes": 18_900_000, "ratio": None},
        {"label": "float32 .tflite", "bytes": 8_460_000, "ratio": 8.46 / 18.9},
        {"label": "int8 .tflite", "bytes": 2_390_000, "ratio": 2.39 / 18.9}]}})
    store.finish_run(run_id, "failed")
    page = write_report(store, run_id, tmp_path / "report.html").read_text()
    budgets = page.split("<section id='budgets'>")[1].split("</section>")[0]
    assert "<td>my-model</td><td>int8</td><td>qemu-m3</td><td><code>latency_us</code></td>" in budgets
    assert "500 µs" in budgets and "812.4 µs (40,620 instructions at 50 MHz)" in budgets
    assert budgets.count("budget-fail") == 1 and budgets.count("budget-pass") == 1
    verdict = page.split("<section id='verdict'>")[1].split("</section>")[0]
    assert "1 budget broken" in verdict and "my-model-int8-qemu-m3-latency_us" in verdict
    sizes = page.split("<section id='sizes'>")[1].split("</section>")[0]
    assert "SavedModel directory" in sizes and "18.9 MB" in sizes and "8.46 MB" in sizes and "2.23x smaller" in sizes
    assert human_size(2_590_000) == "2.59 MB" and ratio_text(1.0) == "same size" and ratio_text(None) == ""


# --------------------------------------------------------------------------- the packaged suite's budget tests


def test_each_budget_is_a_test_named_model_variant_board_budget(tmp_path: Path) -> None:
    """Collection only (nothing built): the ids, a per-board budget only on its board, no test
    against float32 for the drop, and the zoo's sine module only when sine is active."""
    import os
    import subprocess
    import sys

    (tmp_path / "team").mkdir()
    project = tmp_path / "team" / "tinyfarm.yaml"  # not in the directory pytest runs in (found there by default)
    project.write_text("models:\n  sine:\n    source: {zoo: sine}\n    variants: [float32, int8]\n"
                       "    budgets:\n      latency_us: 800\n      accuracy_drop_max: 0.05\n"
                       "      devices: {qemu-m4f: {energy_uj: 5}}\n")
    from farm.pytest_plugin.suite import HIL_SUITE

    env = {k: v for k, v in os.environ.items() if k not in ("FARM_PROJECT", "FARM_MODELS")}

    def collect(*extra: str) -> list[str]:
        done = subprocess.run([sys.executable, "-m", "pytest", str(HIL_SUITE), "--collect-only", "-q",
                               "-p", "no:cacheprovider", f"--farm-devices={REPO / 'devices.yaml'}", *extra],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]

    ids = collect(f"--farm-project={project}")
    budgets = sorted(i[len("test_budget["):-1] for i in ids if i.startswith("test_budget["))
    boards = [d.name for d in load_inventory(REPO / "devices.yaml").devices]
    assert "qemu-m4f" in boards and len(boards) > 1
    assert budgets == sorted([f"sine-{v}-{b}-latency_us" for v in ("float32", "int8") for b in boards]
                             + [f"sine-int8-{b}-accuracy_drop_max" for b in boards]
                             + [f"sine-{v}-qemu-m4f-energy_uj" for v in ("float32", "int8")])
    assert any(i.startswith("test_int8_error_small[") for i in ids)  # sine is active: test_sine.py runs
    assert not [i for i in ids if "digits" in i]  # the project includes no other zoo model
    zoo_only = collect()  # no project: the zoo as before, no budget test
    assert not any(i.startswith("test_budget[") for i in zoo_only) and any("digits" in i for i in zoo_only)
