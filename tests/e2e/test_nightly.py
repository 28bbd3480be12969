"""`farm nightly` end to end on the emulated default (QEMU), as CI runs it.

The nightlies run in a temporary state folder (FARM_HOME) with its own results
database, so they build the firmware themselves; the trained models are copied
from the test session's state folder (cached by content hash: not retrained).
They run the sine module of the HIL suite (``-k test_sine``: 12 measurements, 3
boards x 4 variants: float32, int8-weights, dynamic, int8) — the whole suite measures every model of the zoo, which is
`make nightly`'s job, not a unit of CI time.

- two nightlies in a row: the second rebuilds nothing, finishes much faster and
  reports no regression;
- a deliberate regression — the Cortex-M4 board's build loses its FPU, so float32
  becomes soft-float: ~10x the instructions, more flash — is detected, named
  (board, model, variant, metric, before -> after, %), put in the JUnit XML and the
  HTML report, and fails the nightly; the next good nightly is compared with the
  last passing one, not with the failed one;
- the same nightly against a real PostgreSQL server (``--db``), with a pinned baseline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from farm.config.inventory import load_inventory
from farm.models import VARIANTS
from farm.store.results import ResultsStore


REPO = Path(__file__).resolve().parents[2]
DEVICES = REPO / "devices.yaml"
SUITE = ("-k", "test_sine")  # farm/hil/test_sine.py
#: what the sine suite measures: every variant on each of the three emulated boards
MEASUREMENTS = len(load_inventory(DEVICES).names) * len(VARIANTS)  # every board of the default inventory


def farm(home: Path, *args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "FARM_HOME": str(home)}
    for name in ("FARM_DB_URL", "FARM_THRESHOLDS"):
        env.pop(name, None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "farm", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return proc, time.monotonic() - started


def nightly(home: Path, *args: str, devices: Path = DEVICES) -> tuple[subprocess.CompletedProcess[str], float]:
    return farm(home, "--devices", str(devices), "nightly", *SUITE, *args)


def store_of(home: Path) -> ResultsStore:
    return ResultsStore(f"sqlite:///{home / 'results.db'}")


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def nightly_home(tmp_path_factory: pytest.TempPathFactory, state_dir: Path) -> Path:
    from farm.models import build_variant
    from farm.models.native_output import native_output_to

    with native_output_to(state_dir / "logs" / "tensorflow.log"):
        arts = [build_variant("sine", variant, state_dir / "models") for variant in VARIANTS]
    home = tmp_path_factory.mktemp("nightly-home")
    for art in arts:  # the model cache's entry of each variant: <models>/<name>-<hash>/...
        entry = state_dir / "models" / art.tflite_path.relative_to(state_dir / "models").parts[0]
        shutil.copytree(entry, home / "models" / entry.name, dirs_exist_ok=True)
    return home


@pytest.fixture(scope="module")
def first_nightly(nightly_home: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    proc, seconds = nightly(nightly_home)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc, seconds


def test_second_nightly_rebuilds_nothing_is_much_faster_and_reports_no_regression(first_nightly, nightly_home):
    first, first_seconds = first_nightly
    assert "no baseline to compare with" in first.stdout and "PASSED" in first.stdout
    builds = sorted(p.name for p in (nightly_home / "builds").iterdir())
    assert builds, "the first nightly built the firmware in its own state folder"

    second, seconds = nightly(nightly_home, "--junit", str(nightly_home / "second.xml"))
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    out = flat(second.stdout)
    assert re.search(r"nightly run (\d+): PASSED — no regression against run (\d+) \(last passing nightly\)", out)
    assert "no change in any metric" in out
    assert f"firmware: 0 built, {MEASUREMENTS} cached" in out  # every measured firmware came from the cache
    assert sorted(p.name for p in (nightly_home / "builds").iterdir()) == builds  # nothing rebuilt
    assert seconds < first_seconds / 2, (seconds, first_seconds)

    store = store_of(nightly_home)
    run = store.latest_run("nightly")
    assert run is not None and run.status == "passed" and run.regressions == 0
    assert run.baseline_id is not None and store.run(run.baseline_id).status == "passed"
    assert run.git_commit and run.details["tests"]["failed"] == 0 and run.details["firmware_built"] == 0
    results = store.results_for_run(run.id)
    assert len(results) == MEASUREMENTS and all(r.status == "ok" and len(r.window_counts) == r.windows
                                                for r in results)
    assert {r.variant for r in results} == set(VARIANTS)
    # where the night's time went (farm.scale.time_use): every board job of the cluster, none lost
    use = run.details["time_use"]
    boards = set(load_inventory(DEVICES).names)
    assert set(use["board_seconds"]) == boards and sum(use["board_jobs"].values()) >= MEASUREMENTS
    assert use["lost"] == 0 and use["prepare_jobs"] >= MEASUREMENTS
    assert {b for served in use["workers"].values() for b in served} == boards
    assert all(s["ended"] is not None and "error" not in s for s in run.details["cluster_jobs"])
    assert {r.details["worker"] for r in results} == set(use["workers"])
    assert "time (wall-clock seconds on the workers)" in out
    assert f"board jobs {sum(use['board_jobs'].values())} on {len(boards)} boards" in out
    junit = ET.parse(nightly_home / "second.xml").getroot()
    suites = {s.get("name"): s for s in junit.iter("testsuite")}
    assert suites["farm.judge.regression"].get("tests") == str(MEASUREMENTS)
    assert suites["farm.judge.regression"].get("failures") == "0"


def test_a_deliberate_regression_is_named_reported_and_fails_the_nightly(first_nightly, nightly_home, tmp_path):
    # the M4 build loses its FPU (a wrong capability model, as a bad build-flag change would do)
    text = DEVICES.read_text()
    broken, n = re.subn(r"(?m)^(    fpu: )sp\b", r"\1none", text, count=1)
    assert n == 1
    devices = tmp_path / "devices.yaml"
    devices.write_text(broken)
    report = tmp_path / "report.html"
    junit = tmp_path / "junit.xml"
    proc, _ = nightly(nightly_home, "--junit", str(junit), "--report", str(report), "--json", devices=devices)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = flat(proc.stdout)
    found = re.search(r"REGRESSION qemu-m4f sine/float32 count per inference: ([\d,]+) -> ([\d,]+) instructions "
                      r"\(\+([\d.]+)%\): slower by more than 2% \(emulator counts are exact\)", out)
    assert found, out[-3000:]
    before, after = (int(found.group(i).replace(",", "")) for i in (1, 2))
    assert after > 3 * before and float(found.group(3)) == pytest.approx((after / before - 1) * 100, abs=0.06)
    assert re.search(r"REGRESSION qemu-m4f sine/float32 flash: [\d,]+ B -> [\d,]+ B \(\+[\d.]+%\)", out)
    assert re.search(r"nightly run \d+: FAILED — \d+ regressions", out)

    comparison = json.loads(proc.stdout.strip().splitlines()[-1])
    assert comparison["status"] == "failed"
    bad = {(f["device"], f["variant"], f["metric"]) for f in comparison["comparison"]["findings"]
           if f["severity"] == "regression"}
    assert ("qemu-m4f", "float32", "count") in bad and ("qemu-m4f", "float32", "flash") in bad
    assert all(device == "qemu-m4f" for device, _, _ in bad)  # the other boards did not change
    cause = next(f for f in comparison["comparison"]["findings"]
                 if (f["device"], f["variant"], f["metric"]) == ("qemu-m4f", "float32", "build"))
    assert "built differently: flags" in cause["reason"] and "-mfloat-abi=soft" in cause["reason"]  # likely cause

    store = store_of(nightly_home)
    run = store.latest_run("nightly")
    assert run.status == "failed" and run.regressions == len(bad)
    assert run.details["tests"]["failed"] == 0  # every HIL test passed: the regression alone fails the night

    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    cases = {c.get("classname") + "::" + c.get("name"): c for c in suites["farm.judge.regression"].iter("testcase")}
    failure = cases["farm.judge.regression.qemu-m4f::sine/float32"].find("failure")
    assert failure is not None and "count per inference" in failure.get("message", "")
    assert cases["farm.judge.regression.qemu-m3::sine/float32"].find("failure") is None

    page = report.read_text()
    assert f"FAILED: {run.regressions} regressions" in page
    assert "qemu-m4f sine/float32 count per inference: " in page
    marks = re.search(r'id="plot-trend-count-sine" data-plot="[^"]+" data-regressions="(\d+)"', page)
    assert marks is not None and int(marks.group(1)) >= 1

    # the failed night is not the next one's baseline: the good build passes against the last passing night
    good, _ = nightly(nightly_home)
    assert good.returncode == 0, good.stdout[-4000:]
    latest = store.latest_run("nightly")
    assert latest.baseline_id != run.id and latest.regressions == 0


def test_the_nightly_runs_against_postgresql(first_nightly, nightly_home, pg_db_url, tmp_path):
    first, _ = nightly(nightly_home, "--db", pg_db_url)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert "no baseline to compare with" in first.stdout
    pinned, _ = farm(nightly_home, "baseline", "pin", "latest", "--db", pg_db_url)
    assert pinned.returncode == 0 and "pinned run 1" in pinned.stdout, pinned.stderr
    second, _ = nightly(nightly_home, "--db", pg_db_url, "--json")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    verdict = json.loads(second.stdout.strip().splitlines()[-1])
    assert verdict["status"] == "passed" and verdict["comparison"]["baseline_reason"] == "pinned"
    assert verdict["comparison"]["baseline"]["id"] == 1 and verdict["comparison"]["regressions"] == 0

    store = ResultsStore(pg_db_url)
    assert store.engine.dialect.name == "postgresql"
    runs = store.runs("nightly")
    assert [(r.id, r.status, r.baseline_id) for r in runs] == [(1, "passed", None), (2, "passed", 1)]
    assert store.pinned_baseline() == 1
    for run in runs:
        results = store.results_for_run(run.id)
        assert len(results) == MEASUREMENTS and all(r.status == "ok" and r.window_counts for r in results)
        assert all(r.model_sha256 and r.elf_sha256 and r.compiler_flags for r in results)
    assert store.findings_for_run(2) == []  # nothing changed
    sqlite_runs = {r.id for r in store_of(nightly_home).runs()}
    assert sqlite_runs  # the SQLite database of the state folder was left alone by --db

    report = tmp_path / "pg.html"
    proc, _ = farm(nightly_home, "report", "--db", pg_db_url, "--output", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "nightly run 2" in report.read_text() and "<svg" in report.read_text()
