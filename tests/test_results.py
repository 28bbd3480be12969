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
from farm.results import ResultRecord, ResultsError, ResultsStore

REPO = Path(__file__).resolve().parent.parent


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
        from farm.results import ResultRecord, ResultsStore

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
    assert (run.status, run.finished_at) == ("running", None)
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
    assert tables == {"runs", "results"}
    assert run_columns == ["id", "started_at", "finished_at", "kind", "git_commit", "farm_version", "status"]
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
