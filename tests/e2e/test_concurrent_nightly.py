"""Two `farm nightly` processes at once on the same inventory never use a device together.

Both processes run the real CLI against one results database; each lease they
take is logged (farm.board.leases: device, owner, acquired, released). For every
device the two runs' lease intervals must not overlap -- the second run waited.
And with ``--skip-busy`` a run skips a device that another run holds, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farm.config.inventory import load_inventory
from farm.board.leases import LeaseManager
from farm.store.results import ResultsStore


REPO = Path(__file__).resolve().parents[2]
DEVICES = REPO / "devices.yaml"
KEYWORD = "test_sine and test_int8_bit_exact"  # one quick measurement per device


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "FARM_DB_URL"}  # the database is --db's


def _nightly(url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "farm", "--devices", str(DEVICES), "nightly", "-k", KEYWORD,
                             "--no-progress", "--db", url, *extra], cwd=REPO, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm", "--devices", str(DEVICES), *args], cwd=REPO, env=_env(),
                          text=True, capture_output=True, timeout=300)


def test_two_concurrent_nightlies_share_no_device(tmp_path: Path, state_dir: Path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    ResultsStore(url).close()  # create the tables once, before the two processes race
    LeaseManager(url).close()
    runs = [_nightly(url), _nightly(url)]
    outputs = [p.communicate(timeout=300)[0] for p in runs]
    names = load_inventory(DEVICES).names
    for process, output in zip(runs, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
        assert f"{len(names)} passed" in output, output[-3000:]
    log = LeaseManager(url).log()
    assert {entry["device"] for entry in log} == set(names)
    for name in names:
        intervals = sorted((e["acquired_at"], e["released_at"], e["owner"]) for e in log if e["device"] == name)
        assert len(intervals) == 2 and intervals[0][2] != intervals[1][2], intervals  # both runs used it ...
        for (_, end, _), (start, _, _) in zip(intervals, intervals[1:]):
            assert end is not None and end <= start, f"{name} was used by both nightlies at once: {intervals}"
    results = ResultsStore(url)
    assert all(r.status == "ok" for run in results.runs() for r in results.results_for_run(run.id))


def test_skip_busy_skips_a_device_another_run_holds(tmp_path: Path, state_dir: Path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    ResultsStore(url).close()
    holder = LeaseManager(url, purpose="a long manual session")
    holder.acquire("qemu-m3")
    try:
        process = _nightly(url, "--skip-busy")
        output = process.communicate(timeout=300)[0]
        shown = _farm("devices", "--db", url, "--json")  # the lease, read back from the same --db
    finally:
        holder.close()
    # a night in which a board's jobs did not run is not PASSED (exit 1) and says which and why
    assert process.returncode == 1, output[-3000:]
    assert "qemu-m3 is busy: leased by a long manual session" in output
    assert "measured qemu-m4f sine/int8: ok" in output and "measured qemu-m3" not in output
    assert "MISSING qemu-m3: no measurement ran: qemu-m3 is busy: leased by a long manual session" in output, \
        output[-3000:]
    assert "INCOMPLETE" in output and "1 board(s) did not run (qemu-m3)" in output, output[-3000:]
    names = load_inventory(DEVICES).names
    assert f"{len(names) - 1} passed, 1 skipped" in output  # one test per device, qemu-m3's skipped
    store = ResultsStore(url)
    night = store.runs("nightly")[-1]
    assert night.status == "incomplete" and set(night.details["missing_boards"]) == {"qemu-m3"}
    assert store.last_passing_run("nightly") is None  # never the baseline
    report = _farm("report", "--db", url, "--run", "latest-nightly", "--output", str(tmp_path / "night.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "night.html").read_text()
    assert "INCOMPLETE" in html and "jobs did not run, so this night is not PASSED" in html
    assert "qemu-m3: no measurement ran: qemu-m3 is busy" in html
    assert [e["device"] for e in LeaseManager(url).log()].count("qemu-m3") == 1  # only the holder's
    assert shown.returncode == 0, shown.stderr
    states = {row["name"]: row["state"] for row in json.loads(shown.stdout)}
    assert states["qemu-m3"].startswith("leased by a long manual session") and states["qemu-m4f"] == "free"
    # the nightly's results, read back from the same --db by `farm results`
    results = _farm("results", "--db", url, "--run", "latest", "--json")
    assert results.returncode == 0, results.stderr
    rows = [json.loads(line) for line in results.stdout.splitlines()]
    assert {(r["device"], r["status"]) for r in rows} >= {("qemu-m4f", "ok")}
    assert "qemu-m3" not in {r["device"] for r in rows}
