"""A run whose process is gone reads as ``aborted``: in the store, in ``farm results``, in the
report, and it is never a baseline. The process is a real one, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from farm.config.thresholds import defaults
from farm.judge.regression import choose_baseline
from farm.store.liveness import process_gone, process_start, this_process
from farm.store.results import ResultRecord, ResultsStore

REPO = Path(__file__).resolve().parents[2]
RUNNER = textwrap.dedent(
    """
    import sys, time
    from farm.store.results import ResultRecord, ResultsStore

    store = ResultsStore(sys.argv[1])
    run_id = store.start_run("nightly", "deadbeef")
    store.add_result(run_id, ResultRecord(device="qemu-m3", model="sine", variant="int8", status="ok",
                                          unit="instructions", count_median=4338.0))
    print(run_id, flush=True)
    time.sleep(600)  # measuring... until killed
    """
)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _passed_nightly(store: ResultsStore) -> int:
    run_id = store.start_run("nightly", "cafe")
    store.add_result(run_id, ResultRecord(device="qemu-m3", model="sine", variant="int8", status="ok",
                                          unit="instructions", count_median=4338.0))
    store.set_comparison(run_id, None, [])
    store.finish_run(run_id, "passed")
    return run_id


@pytest.fixture
def killed_run(tmp_path: Path) -> tuple[str, int, int]:
    """(url, a passed nightly, a nightly whose process was running it and got SIGKILL)."""
    url = _url(tmp_path / "results.db")
    with ResultsStore(url) as store:
        passed = _passed_nightly(store)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        run_id = int(proc.stdout.readline())
        with ResultsStore(url) as store:
            assert store.run(run_id).status == "running"  # alive: running it is
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return url, passed, run_id


def test_a_killed_run_reads_as_aborted_and_is_stored_so(killed_run: tuple[str, int, int]) -> None:
    url, passed, run_id = killed_run
    store = ResultsStore(url)
    run = store.run(run_id)
    assert (run.status, run.finished_at) == ("aborted", None)
    assert [(r.id, r.status) for r in store.runs()] == [(passed, "passed"), (run_id, "aborted")]
    assert store.latest_run("nightly").status == "aborted"  # type: ignore[union-attr]
    assert [r.count_median for r in store.results_for_run(run_id)] == [4338.0]  # its results are kept
    with store.engine.connect() as conn:  # stored, for readers on other hosts
        assert conn.execute(text("SELECT status FROM runs WHERE id = :id"), {"id": run_id}).scalar() == "aborted"
    store.close()


def test_an_aborted_run_is_never_the_baseline_even_pinned(killed_run: tuple[str, int, int]) -> None:
    url, passed, aborted = killed_run
    store = ResultsStore(url)
    store.pin_baseline(aborted)
    current = store.run(store.start_run("nightly", "beef"))
    baseline, reason = choose_baseline(store, current)
    assert baseline is not None and baseline.id == passed
    assert reason == f"last passing nightly (pinned run {aborted} was aborted)"
    store.unpin_baseline()
    assert choose_baseline(store, current)[0].id == passed  # type: ignore[union-attr]
    store.close()


def test_farm_results_shows_the_run_aborted(killed_run: tuple[str, int, int]) -> None:
    from farm.cli.main import cli

    url, _passed, run_id = killed_run
    result = CliRunner().invoke(cli, ["results", "--db", url, "--run", str(run_id)])
    assert result.exit_code == 0, result.output
    assert f"run {run_id} (nightly, aborted" in result.output
    assert "its process is gone and it never finished" in result.output and "4,338 instructions" in result.output


def test_the_report_shows_the_run_aborted(killed_run: tuple[str, int, int], tmp_path: Path) -> None:
    from farm.report.html import write_report

    url, _passed, run_id = killed_run
    with ResultsStore(url) as store:
        html = write_report(store, run_id, tmp_path / "report.html", thresholds=defaults()).read_text()
    assert f'data-run="{run_id}" data-status="aborted"' in html
    assert "ABORTED: 0 regressions" in html and "its process is gone and it never finished" in html


def test_only_a_process_known_to_be_gone_makes_a_run_aborted(tmp_path: Path) -> None:
    """Same host and pid but another start time: the pid was reused, the run's process is gone.
    Another host's run, or one recorded without its process, is left running."""
    me = this_process()
    assert me.start is not None and me.start == process_start(os.getpid())
    assert not process_gone(me.host, me.pid, me.start)
    boot, namespace, ticks = me.start.split(":")
    assert process_gone(me.host, me.pid, f"{boot}:{namespace}:{int(ticks) + 1}")  # the pid was reused
    assert process_gone(me.host, me.pid, f"another-boot:{namespace}:{ticks}")  # rebooted since
    assert not process_gone(me.host, me.pid, f"{boot}:1:{int(ticks) + 1}")  # another container's pid
    assert not process_gone("some-other-host", me.pid, f"{boot}:{namespace}:{int(ticks) + 1}")
    assert not process_gone(None, None, None)
    reused = f"{boot}:{namespace}:{int(ticks) + 1}"
    store = ResultsStore(_url(tmp_path / "r.db"))
    ids = [store.start_run("run") for _ in range(4)]
    rows = [(socket.gethostname(), os.getpid(), me.start), (socket.gethostname(), os.getpid(), reused),
            ("some-other-host", 1, reused), (None, None, None)]
    with store.engine.begin() as conn:
        for run_id, (host, pid, start) in zip(ids, rows):
            conn.execute(text("UPDATE runs SET host = :h, pid = :p, process_start = :s WHERE id = :id"),
                         {"h": host, "p": pid, "s": start, "id": run_id})
    assert [r.status for r in store.runs()] == ["running", "aborted", "running", "running"]
    store.finish_run(ids[0], "passed")
    assert store.run(ids[0]).status == "passed"
    store.close()


def test_process_start_reads_field_22_after_a_command_name_with_spaces(tmp_path: Path) -> None:
    """/proc/<pid>/stat: field 2 is "(comm)", which may hold spaces and parentheses."""
    exe = tmp_path / "a b) c"
    exe.symlink_to(sys.executable)
    child = subprocess.Popen([str(exe), "-c", "import time; time.sleep(30)"])
    try:
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        assert "(a b) c)" in stat
        ticks = stat[stat.rfind(")") + 2:].split()[19]
        token = process_start(child.pid)
        assert token is not None and token.split(":")[2] == ticks
        assert token.split(":")[:2] == this_process().start.split(":")[:2]  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait()
    assert process_start(child.pid) is None  # gone (and reaped)


def test_the_results_table_names_an_aborted_run_and_nothing_more_for_others() -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from farm.report.console import print_results
    from farm.store.results import RunRecord

    records = [ResultRecord(device="qemu-m3", model="sine", variant="int8", status="ok", unit="instructions",
                            count_median=4338.0)]
    outputs = {}
    for status in ("aborted", "passed", "running"):
        console = Console(width=200, record=True)
        run = RunRecord(id=7, kind="nightly", status=status, started_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
                        finished_at=None, git_commit="deadbeef", farm_version="0.1.0")
        print_results(console, records, title="run 7", run=run)
        outputs[status] = console.export_text()
    plain = Console(width=200, record=True)
    print_results(plain, records, title="run 7")
    assert outputs["aborted"].startswith("run 7 (nightly, aborted, 2026-01-02 03:04 UTC, commit deadbeef): its "
                                         "process is gone and it never finished; 1 result stored before\n")
    assert outputs["passed"] == outputs["running"] == plain.export_text()
