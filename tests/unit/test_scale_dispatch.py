"""The dispatcher on a real (threaded) Dask cluster: events reach the dispatcher whose job it
is, a job that raises is an infra-error naming the exception, and the job log pairs up."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from farm.config.inventory import load_inventory
from farm.scale.dispatch import Dispatcher, job_spans
from farm.scale.jobs import PROGRESS_TOPIC, JobOutcome, MeasureSpec, log_event, run_board_job
from farm.scale.resources import board_resource

REPO = Path(__file__).resolve().parents[2]


def nothing_to_prepare(device: Any, model: str, variant: str, kernels: str, project: str | None) -> dict[str, Any]:
    return {}


def echo_job(spec: MeasureSpec, prepared: Any, key: str) -> JobOutcome:
    def run() -> str:
        log_event(PROGRESS_TOPIC, {"board": spec.board, "key": key, "message": f"step of {key}"})
        return f"{spec.model}/{spec.variant}"
    return run_board_job(spec.board, key, run)


def failing_job(spec: MeasureSpec, prepared: Any, key: str) -> JobOutcome:
    def run() -> str:
        if spec.variant == "int8":
            raise RuntimeError(f"boom in {spec.model}")
        return "fine"
    return run_board_job(spec.board, key, run)


@pytest.fixture
def client():
    from distributed import Client, LocalCluster

    from farm.scale.cluster import quiet_logs

    quiet_logs()
    device = load_inventory(REPO / "devices.yaml").devices[0]
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=3, dashboard_address=None,
                      resources={board_resource(device.name): 1}) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c, device


def _spec(device: Any, model: str, variant: str) -> MeasureSpec:
    from farm.board.leases import LeasePolicy

    return MeasureSpec(device, model, variant, LeasePolicy("sqlite://"), project=None)


def test_two_dispatchers_on_one_client_each_see_their_own_jobs_events(client):
    c, device = client
    said: dict[str, list[str]] = {"a": [], "b": []}
    first = Dispatcher(c, job=echo_job, host_job=nothing_to_prepare, progress=said["a"].append)
    second = Dispatcher(c, job=echo_job, host_job=nothing_to_prepare, progress=said["b"].append)
    try:
        a = first.outcome(_spec(device, "sine", "int8"))
        b = second.outcome(_spec(device, "kws", "float32"))
        assert (a.record, b.record) == ("sine/int8", "kws/float32")
        key_a, key_b = first.keys[(device.name, "sine", "int8")], second.keys[(device.name, "kws", "float32")]
        for dispatcher, key in ((first, key_a), (second, key_b)):  # events arrive after the result: wait
            for _ in range(100):
                if [e["event"] for e in dispatcher.job_log if e.get("kind") == "board"] == ["start", "end"]:
                    break
                time.sleep(0.05)
            board_events = [e for e in dispatcher.job_log if e.get("kind") == "board"]
            assert [(e["key"], e["event"]) for e in board_events] == [(key, "start"), (key, "end")]
            assert all(e["worker"] == a.worker for e in board_events)
        assert said == {"a": [f"step of {key_a}"], "b": [f"step of {key_b}"]}
    finally:
        first.close()
        second.close()


def test_a_job_that_raises_is_infra_error_naming_the_exception_and_its_board_goes_on(client):
    c, device = client
    dispatcher = Dispatcher(c, job=failing_job, host_job=nothing_to_prepare)
    try:
        failed = dispatcher.outcome(_spec(device, "sine", "int8"))
        after = dispatcher.outcome(_spec(device, "sine", "float32"))
    finally:
        dispatcher.close()
    record = failed.record
    assert record.status == "infra-error"
    assert f"{device.name} sine/int8: the job failed" in record.message
    assert "RuntimeError: boom in sine" in record.message
    assert record.details["infra"] == "RuntimeError"
    assert after.record == "fine"  # the board was not set aside
    assert device.name not in dispatcher.dead


def sleepy_job(spec: MeasureSpec, prepared: Any, key: str) -> JobOutcome:
    return run_board_job(spec.board, key, lambda: time.sleep(1.5 if spec.model == "slow" else 0.05))


def test_a_busy_boards_queued_jobs_never_hold_back_a_free_board_on_the_same_worker():
    """One worker serving two boards: board A's slow job runs and A has more queued; a job of
    board B submitted after them starts at once, not when A's job ends (Dask runs the
    resource-restricted task of highest priority first, or none: the dispatcher keeps one job
    per board on the cluster), and each board's jobs still run in order, one at a time."""
    from distributed import Client, LocalCluster

    from farm.scale.cluster import quiet_logs

    quiet_logs()
    a, b = load_inventory(REPO / "devices.yaml").devices[:2]
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=3, dashboard_address=None,
                      resources={board_resource(a.name): 1, board_resource(b.name): 1}) as cluster, \
            Client(cluster, set_as_default=False) as c:
        dispatcher = Dispatcher(c, job=sleepy_job, host_job=nothing_to_prepare)
        try:
            specs = [_spec(a, "slow", "int8"), _spec(a, "fast", "int8"), _spec(a, "fast", "float32"),
                     _spec(b, "fast", "int8")]
            for spec in specs[:3]:
                dispatcher.submit(spec)
            time.sleep(0.4)  # A's queued jobs reach the worker first
            dispatcher.submit(specs[3])
            done = [dispatcher.outcome(spec) for spec in specs]
        finally:
            dispatcher.close()
    slow, a2, a3, b1 = done
    assert b1.started < slow.ended - 0.5, (b1.started, slow.started, slow.ended)
    assert slow.ended <= a2.started and a2.ended <= a3.started  # A's jobs in order, one at a time
    assert all(o.record is None and o.skipped is None for o in done)


def test_the_job_log_is_one_span_per_job_in_start_order():
    log = [{"key": "b", "kind": "board", "board": "m3", "worker": "w1", "event": "start", "at": 5.0},
           {"key": "p", "kind": "prepare", "board": "m3", "worker": "w2", "event": "start", "at": 1.0},
           {"key": "p", "kind": "prepare", "board": "m3", "worker": "w2", "event": "end", "at": 2.0},
           {"key": "b", "kind": "board", "board": "m3", "worker": "w1", "event": "end", "at": 9.0,
            "error": "RuntimeError: x"},
           {"key": "lost", "kind": "board", "board": "m4", "worker": "w3", "event": "start", "at": 7.0}]
    spans = job_spans(log)
    assert [(s["key"], s["kind"], s["worker"], s["started"], s["ended"]) for s in spans] == [
        ("p", "prepare", "w2", 1.0, 2.0), ("b", "board", "w1", 5.0, 9.0), ("lost", "board", "w3", 7.0, None)]
    assert spans[1]["error"] == "RuntimeError: x" and "error" not in spans[0]


def test_where_the_time_went_sums_board_jobs_per_board_and_finds_the_idle_seconds():
    from farm.report.console import time_use_text
    from farm.scale.time_use import time_use

    spans = [{"key": "p1", "kind": "prepare", "board": "m3", "worker": "w1", "started": 0.0, "ended": 2.0},
             {"key": "a", "kind": "board", "board": "m3", "worker": "w1", "started": 2.0, "ended": 10.0},
             {"key": "b", "kind": "board", "board": "m4", "worker": "w2", "started": 4.0, "ended": 6.0},
             {"key": "c", "kind": "board", "board": "m4", "worker": "w2", "started": 13.0, "ended": 15.0},
             {"key": "d", "kind": "board", "board": "m3", "worker": "w1", "started": 14.0, "ended": None}]
    use = time_use(spans)
    assert use.board_seconds == {"m3": 8.0, "m4": 4.0} and use.board_jobs == {"m3": 1, "m4": 2}
    assert (use.prepare_jobs, use.prepare_seconds) == (1, 2.0)
    assert (use.span_seconds, use.idle_seconds) == (13.0, 3.0)  # 2..15; nothing ran 10..13
    assert use.workers == {"w1": ["m3"], "w2": ["m4"]} and use.lost == 1
    text = time_use_text(use.to_json(), 20.0)
    assert "board jobs 3 on 2 boards and 2 workers over 13 s (m3 8 s, m4 4 s)" in text
    assert "no board job running for 3 s" in text and "1 board job(s) lost" in text
