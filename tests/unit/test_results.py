from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import farm
from farm.store.results import ResultRecord, ResultsError, ResultsStore

REPO = Path(__file__).resolve().parents[2]


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def full_record(variant: str = "int8") -> ResultRecord:
    return ResultRecord(
        device="qemu-m3",
        model="digits-mlp",
        variant=variant,
        status="ok",
        message="rejected outlier windows: 1",
        unit="instructions",
        count_median=123_456.5,
        count_min=123_400,
        count_max=5_000_000_000,  # > 2**32: counts are stored as 64-bit integers
        windows=5,
        latency_us=4938.26,
        latency_is_estimate=True,
        energy_uj=81.48,
        energy_source="modelled: 200 uA/MHz x 3.3 V x instructions (datasheet model, not measured)",
        metric="accuracy",
        accuracy_device=0.9611,
        accuracy_host=0.9638,
        bit_exact_fraction=1.0,
        max_abs_error=0.0,
        flash_bytes=48_213,
        ram_bytes=9_120,
        model_size_bytes=12_904,
        model_sha256="a" * 64,
        elf_sha256="b" * 64,
        compiler="arm-none-eabi-gcc 12.2.1",
        compiler_flags="-mcpu=cortex-m3 -mthumb -mfloat-abi=soft -O2",
        host=None,
        farm_version="9.9.9",
    )


def stored_fields(record: ResultRecord) -> dict[str, object]:
    data = dataclasses.asdict(record)
    for key in ("id", "run_id", "created_at"):
        data.pop(key)
    return data


def test_results_survive_reopening_the_store(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    with ResultsStore(url(db)) as store:
        run_id = store.start_run("nightly", git_commit="3f2c1e0")
        first = store.add_result(run_id, full_record("int8"))
        second = store.add_result(run_id, full_record("float32"))
        store.finish_run(run_id, "passed")
    assert db.is_file()

    with ResultsStore(url(db)) as reopened:
        results = reopened.results_for_run(run_id)
        run = reopened.run(run_id)
    assert [r.id for r in results] == [first, second]
    assert [r.variant for r in results] == ["int8", "float32"]
    assert stored_fields(results[0]) == stored_fields(full_record("int8"))
    assert results[0].count_max == 5_000_000_000 and results[0].latency_is_estimate is True
    assert all(r.run_id == run_id for r in results)
    assert results[0].created_at is not None and results[0].created_at.tzinfo is UTC
    assert (run.kind, run.status, run.git_commit, run.farm_version) == (
        "nightly",
        "passed",
        "3f2c1e0",
        farm.__version__,
    )
    assert run.finished_at is not None and run.started_at <= run.finished_at <= datetime.now(UTC)


def test_a_crash_mid_run_keeps_the_results_added_before(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    script = textwrap.dedent(
        """
        import os, signal, sys
        from farm.store.results import ResultRecord, ResultsStore

        store = ResultsStore(sys.argv[1])
        run_id = store.start_run("nightly", "deadbeef")
        for variant in ("float32", "int8-weights"):
            store.add_result(run_id, ResultRecord(device="qemu-m4f", model="sine", variant=variant,
                                                  status="ok", unit="instructions", count_median=1000.0))
        print(run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the board hung the controller; nobody finishes the run
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script, url(db)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = int(proc.stdout)

    store = ResultsStore(url(db))
    results = store.results_for_run(run_id)
    assert [(r.device, r.variant, r.count_median) for r in results] == [
        ("qemu-m4f", "float32", 1000.0),
        ("qemu-m4f", "int8-weights", 1000.0),
    ]
    run = store.run(run_id)
    # its process is gone: the run reads as aborted (and is stored so), never finished
    assert (run.status, run.finished_at) == ("aborted", None)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() == ("aborted",)
    # the next run goes on in the same database
    next_run = store.start_run("nightly", "cafe123")
    assert next_run == run_id + 1 and store.latest_run("nightly") is not None
    store.close()


def test_tables_are_created_with_the_documented_columns(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "state" / "results.db"  # parent folders are created
    ResultsStore(url(db)).close()
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        run_columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        result_columns = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
    assert tables == {"runs", "results", "findings", "settings"}
    assert run_columns == ["id", "started_at", "finished_at", "kind", "git_commit", "farm_version", "status",
                           "baseline_id", "regressions", "details", "host", "pid", "process_start"]
    assert result_columns == {f.name for f in dataclasses.fields(ResultRecord)}


def test_latest_run_and_runs(tmp_path: Path) -> None:
    store = ResultsStore(url(tmp_path / "r.db"))
    assert store.latest_run() is None and store.runs() == []
    first = store.start_run("nightly", "aaa")
    second = store.start_run("run", "bbb")
    third = store.start_run("nightly", "ccc")
    store.finish_run(first, "failed")
    assert [r.id for r in store.runs()] == [first, second, third]
    assert store.latest_run().id == third  # type: ignore[union-attr]
    assert store.latest_run("run").git_commit == "bbb"  # type: ignore[union-attr]
    assert store.latest_run("pytest") is None
    assert [r.status for r in store.runs()] == ["failed", "running", "running"]


def test_farm_version_of_a_result_defaults_to_its_runs(tmp_path: Path) -> None:
    store = ResultsStore(url(tmp_path / "r.db"))
    run_id = store.start_run("run", None, farm_version="1.2.3")
    store.add_result(run_id, ResultRecord(device="d", model="m", variant="int8", status="does-not-fit",
                                          message="flash: needs 70000 bytes, d has 65536"))  # fmt: skip
    (record,) = store.results_for_run(run_id)
    assert (record.farm_version, record.status, record.count_median) == ("1.2.3", "does-not-fit", None)


def test_to_dict_is_json_ready(tmp_path: Path) -> None:
    store = ResultsStore(url(tmp_path / "r.db"))
    run_id = store.start_run("run", "abc")
    store.add_result(run_id, full_record())
    (record,) = store.results_for_run(run_id)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["count_max"] == 5_000_000_000 and data["unit"] == "instructions"
    assert datetime.fromisoformat(data["created_at"]) == record.created_at
    run_data = json.loads(json.dumps(store.run(run_id).to_dict()))
    assert run_data["kind"] == "run" and run_data["finished_at"] is None


def test_refuses_what_it_cannot_store_faithfully(tmp_path: Path) -> None:
    store = ResultsStore(url(tmp_path / "r.db"))
    run_id = store.start_run("run", "abc")
    with pytest.raises(ResultsError, match="unknown result status 'passed'"):
        store.add_result(run_id, ResultRecord(device="d", model="m", variant="int8", status="passed"))
    with pytest.raises(ResultsError, match="unknown count unit 'ticks'"):
        store.add_result(run_id, ResultRecord(device="d", model="m", variant="int8", status="ok", unit="ticks"))
    with pytest.raises(ResultsError, match="no run with id 99"):
        store.add_result(99, ResultRecord(device="d", model="m", variant="int8", status="ok"))
    with pytest.raises(ResultsError, match="unknown run kind 'weekly'"):
        store.start_run("weekly", "abc")
    with pytest.raises(ResultsError, match="unknown final run status 'running'"):
        store.finish_run(run_id, "running")
    assert store.results_for_run(run_id) == []


# --------------------------------------------------------------------------- history, baselines, findings
# The same tests run on SQLite and on a real PostgreSQL server (tests/postgres_server.py).


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> ResultsStore:
    if request.param == "sqlite":
        url_ = url(tmp_path / "r.db")
    else:
        url_ = request.getfixturevalue("pg_db_url")
    store = ResultsStore(url_)
    yield store
    store.close()


def test_every_field_round_trips_including_windows_and_details(any_store: ResultsStore) -> None:
    record = full_record()
    record.window_counts = [123_456.0, 123_400.0, 123_470.5, 123_456.0, 5_000_000_000.0]
    record.details = {"firmware_cached": True, "build_seconds": 0.71, "float_kind": "float-free"}
    run_id = any_store.start_run("nightly", "abc")
    any_store.add_result(run_id, record)
    (back,) = any_store.results_for_run(run_id)
    assert stored_fields(back) == stored_fields(record)
    assert back.created_at.tzinfo is UTC
    run = any_store.run(run_id)
    assert run.started_at.tzinfo is UTC and (run.baseline_id, run.regressions, run.details) == (None, None, None)


def test_last_passing_nightly_and_pinned_baseline(any_store: ResultsStore) -> None:
    store = any_store
    assert store.last_passing_run() is None and store.pinned_baseline() is None
    a = store.start_run("nightly", "a")
    store.finish_run(a, "passed")
    b = store.start_run("run", "b")
    store.finish_run(b, "passed")  # a `farm run` is never a nightly's baseline
    c = store.start_run("nightly", "c")
    store.finish_run(c, "failed")
    d = store.start_run("nightly", "d")
    assert store.last_passing_run().id == a  # type: ignore[union-attr]
    assert store.last_passing_run(before=a) is None
    store.finish_run(d, "passed")
    assert store.last_passing_run().id == d  # type: ignore[union-attr]
    assert store.last_passing_run(before=d).id == a  # type: ignore[union-attr]

    assert store.pin_baseline(c).id == c
    assert store.pinned_baseline() == c
    store.pin_baseline(a)  # re-pinning replaces
    assert store.pinned_baseline() == a
    assert store.unpin_baseline() == a and store.pinned_baseline() is None and store.unpin_baseline() is None
    with pytest.raises(ResultsError, match="no run with id 999"):
        store.pin_baseline(999)
    assert [r.id for r in store.runs("nightly")] == [a, c, d]
    assert [r.id for r in store.runs("nightly", last=2)] == [c, d]
    assert [r.id for r in store.runs(up_to=b)] == [a, b]


def test_findings_are_stored_with_the_runs_baseline(any_store: ResultsStore) -> None:
    from farm.store.results import Finding

    store = any_store
    base = store.start_run("nightly", "a")
    run = store.start_run("nightly", "b")
    findings = [
        Finding(device="qemu-m3", model="sine", variant="int8", metric="count", severity="regression",
                before=4338.0, after=4800.0, unit="instructions", change_pct=10.65, reason="slower by more than 2%"),
        Finding(device="qemu-m3", model="sine", variant="float32", metric="status", severity="regression",
                before="ok", after="faulted", reason="was ok, now faulted: HardFault"),
        Finding(device="qemu-rv32", model="sine", variant="int8", metric="flash", severity="changed",
                before=6228, after=6300, unit="bytes", change_pct=1.16),
        Finding(device="qemu-m4f", model="ad", variant="float32", metric="status", severity="new",
                before=None, after="ok", reason="not in the baseline"),
        Finding(device="qemu-m4f", model="kws", variant="int8", metric="status", severity="missing",
                before="ok", after=None, reason="not measured in this run"),
    ]
    store.set_comparison(run, base, findings)
    assert store.findings_for_run(run) == findings
    assert (store.run(run).baseline_id, store.run(run).regressions) == (base, 2)
    store.set_comparison(run, base, findings[2:3])  # judged again: replaced, not added
    assert store.findings_for_run(run) == findings[2:3] and store.run(run).regressions == 0
    store.update_run_details(run, tests={"passed": 3})
    store.update_run_details(run, seconds=1.5)
    assert store.run(run).details == {"tests": {"passed": 3}, "seconds": 1.5}
    with pytest.raises(ResultsError, match="unknown finding severity 'bad'"):
        store.set_comparison(run, base, [Finding(device="d", model="m", variant="v", metric="count",
                                                 severity="bad")])


def test_an_older_database_gets_the_new_columns(tmp_path: Path) -> None:
    """A results.db written before runs/results had baseline_id, window_counts, ... keeps working."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE runs (id INTEGER PRIMARY KEY, started_at DATETIME, finished_at DATETIME,
                kind VARCHAR(16), git_commit VARCHAR(64), farm_version VARCHAR(64), status VARCHAR(16));
            CREATE TABLE results (id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
                device VARCHAR(128), model VARCHAR(128), variant VARCHAR(32), status VARCHAR(16), message TEXT,
                unit VARCHAR(16), count_median FLOAT, count_min BIGINT, count_max BIGINT, windows INTEGER,
                latency_us FLOAT, latency_is_estimate BOOLEAN, energy_uj FLOAT, energy_source TEXT,
                metric VARCHAR(32), accuracy_device FLOAT, accuracy_host FLOAT, bit_exact_fraction FLOAT,
                max_abs_error FLOAT, flash_bytes BIGINT, ram_bytes BIGINT, model_size_bytes BIGINT,
                model_sha256 VARCHAR(64), elf_sha256 VARCHAR(64), compiler TEXT, compiler_flags TEXT,
                host VARCHAR(128), farm_version VARCHAR(64), created_at DATETIME);
            INSERT INTO runs VALUES (1, '2026-01-01 00:00:00', '2026-01-01 00:01:00', 'nightly', 'abc', '0.1.0',
                'passed');
            INSERT INTO results (id, run_id, device, model, variant, status, unit, count_median, created_at)
                VALUES (1, 1, 'qemu-m3', 'sine', 'int8', 'ok', 'instructions', 4338, '2026-01-01 00:00:30');
        """)
    store = ResultsStore(url(db))
    (old,) = store.results_for_run(1)
    assert (old.count_median, old.window_counts, old.details) == (4338.0, None, None)
    assert store.last_passing_run().id == 1  # type: ignore[union-attr]
    new = store.start_run("nightly", "def")
    store.add_result(new, ResultRecord(device="qemu-m3", model="sine", variant="int8", status="ok",
                                       window_counts=[1.0, 2.0]))
    store.set_comparison(new, 1, [])
    assert store.results_for_run(new)[0].window_counts == [1.0, 2.0] and store.run(new).baseline_id == 1


def test_an_older_findings_table_accepts_findings_without_a_before(tmp_path: Path) -> None:
    """tinyfarm 0.1 created findings.before/after NOT NULL: a nightly with a combination new to
    its baseline then crashed storing the finding. Opening the store relaxes the columns and
    keeps the findings already stored."""
    from farm.store.results import Finding

    db = tmp_path / "old.db"
    ResultsStore(url(db)).engine.dispose()  # today's tables, then the findings table as 0.1 made it
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            DROP TABLE findings;
            CREATE TABLE findings (id INTEGER NOT NULL, run_id INTEGER NOT NULL, baseline_id INTEGER,
                device VARCHAR(128) NOT NULL, model VARCHAR(128) NOT NULL, variant VARCHAR(32) NOT NULL,
                metric VARCHAR(32) NOT NULL, severity VARCHAR(16) NOT NULL, "before" JSON NOT NULL,
                "after" JSON NOT NULL, unit VARCHAR(32), change_pct FLOAT, reason TEXT NOT NULL,
                PRIMARY KEY (id), FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE);
            CREATE INDEX ix_findings_run_id ON findings (run_id);
            INSERT INTO runs (id, started_at, kind, git_commit, farm_version, status)
                VALUES (1, '2026-01-01 00:00:00', 'nightly', 'abc', '0.1.0', 'passed'),
                       (2, '2026-01-02 00:00:00', 'nightly', 'def', '0.1.0', 'passed');
            INSERT INTO findings VALUES (1, 2, 1, 'qemu-m3', 'sine', 'int8', 'count', 'changed', '4338.0',
                '4400.0', 'instructions', 1.4, 'slower');
        """)
    store = ResultsStore(url(db))
    (kept,) = store.findings_for_run(2)
    assert (kept.before, kept.after, kept.reason) == (4338.0, 4400.0, "slower")
    run = store.start_run("nightly", "ghi")
    new = Finding(device="qemu-m4f", model="ad", variant="float32", metric="status", severity="new",
                  before=None, after="ok", reason="not in the baseline")
    store.set_comparison(run, 2, [new])
    assert store.findings_for_run(run) == [new]
    with sqlite3.connect(db) as conn:
        columns = {row[1]: row[3] for row in conn.execute("PRAGMA table_info(findings)")}
        indexes = [row[1] for row in conn.execute("PRAGMA index_list(findings)")]
    assert columns["before"] == 0 and columns["after"] == 0 and "ix_findings_run_id" in indexes


def test_postgres_urls_use_psycopg_and_bad_urls_are_refused_with_a_sentence(tmp_path: Path) -> None:
    from farm.store.results import normalize_url, redact

    assert normalize_url("postgresql://farm@db:5432/farm").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://farm@db/farm").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg2://x@y/z").drivername == "postgresql+psycopg2"  # as asked
    assert redact("postgresql://farm:secret@db/farm") == "postgresql://farm:***@db/farm"
    with pytest.raises(ResultsError, match="not a database URL"):
        ResultsStore("not a url")
    with pytest.raises(ResultsError, match=r"cannot open the results database postgresql\+psycopg://farm:\*\*\*@"):
        ResultsStore("postgresql://farm:secret@127.0.0.1:1/farm")  # nothing listens on port 1


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url(tmp_path / "old.db") if request.param == "sqlite" else request.getfixturevalue("pg_db_url")


def test_an_older_runs_table_gets_the_process_columns_on_sqlite_and_postgres(any_url: str) -> None:
    """A database made before runs recorded their host, pid and process start: opening it adds
    the columns; its runs keep their statuses, and a run left running by an older tinyfarm
    stays running (nobody knows its process), while new runs record theirs."""
    from sqlalchemy import create_engine, text

    old = create_engine(any_url.replace("postgresql://", "postgresql+psycopg://", 1))
    key = "SERIAL PRIMARY KEY" if old.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    with old.begin() as conn:
        conn.execute(text(f"CREATE TABLE runs (id {key}, started_at TIMESTAMP, finished_at TIMESTAMP, "
                          "kind VARCHAR(16), git_commit VARCHAR(64), farm_version VARCHAR(64), status VARCHAR(16), "
                          "baseline_id INTEGER, regressions INTEGER, details JSON)"))
        conn.execute(text("INSERT INTO runs (started_at, finished_at, kind, status) VALUES "
                          "('2026-01-01 00:00:00', '2026-01-01 00:01:00', 'nightly', 'passed'), "
                          "('2026-01-02 00:00:00', NULL, 'nightly', 'running')"))
    old.dispose()
    store = ResultsStore(any_url)
    assert [(r.id, r.status) for r in store.runs()] == [(1, "passed"), (2, "running")]
    new = store.start_run("nightly", "abc")
    assert store.run(new).status == "running"  # this process is alive
    from sqlalchemy import inspect

    columns = {c["name"] for c in inspect(store.engine).get_columns("runs")}
    assert {"host", "pid", "process_start"} <= columns
    with store.engine.connect() as conn:
        host, pid = conn.execute(text("SELECT host, pid FROM runs WHERE id = :id"), {"id": new}).one()
    assert pid == os.getpid() and host
    store.close()
