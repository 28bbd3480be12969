"""farm/scale's plain parts: board resources, which boards a worker serves, the plan of
measurements the collected HIL tests will ask for, and a board no worker serves."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from types import SimpleNamespace

import dask
import pytest

from farm.config.inventory import load_inventory
from farm.pytest_plugin.planning import planned_measurements
from farm.scale.cluster import (ENGINE_SETTINGS, LOCAL_WORKERS_ENV, engine_env_name, local_layout, local_workers,
                                quiet_engine)
from farm.scale.dispatch import board_interleaved
from farm.scale.resources import board_resource, boards_for_host, boards_of_worker, resources_for, split_boards

REPO = Path(__file__).resolve().parents[2]


def test_a_board_is_one_unit_of_its_own_resource():
    assert board_resource("qemu-m3") == "board:qemu-m3"
    assert resources_for(["a", "b"]) == {"board:a": 1.0, "board:b": 1.0}
    assert boards_of_worker({"board:b": 1.0, "board:a": 1.0, "GPU": 2}) == ["a", "b"]
    assert split_boards(["a", "b", "c"], 2) == [["a", "c"], ["b"]]  # each board on exactly one worker


def test_a_local_cluster_is_one_worker_process_per_core_each_board_on_one(monkeypatch):
    boards = ["qemu-m4f", "qemu-m3", "qemu-rv32", "avr-mega2560", "avr-1284p"]
    monkeypatch.delenv(LOCAL_WORKERS_ENV, raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})  # a 2-core machine
    assert local_layout(boards) == [["qemu-m4f", "qemu-rv32", "avr-1284p"], ["qemu-m3", "avr-mega2560"]]
    assert local_workers(1) == 1  # never more worker processes than boards
    assert local_layout([]) == [[]]  # no boards: one worker for host-only work
    monkeypatch.setenv(LOCAL_WORKERS_ENV, "5")
    assert [len(g) for g in local_layout(boards)] == [1, 1, 1, 1, 1]
    assert local_workers(5, requested=1) == 1
    monkeypatch.setenv(LOCAL_WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="FARM_LOCAL_WORKERS='two': not a number"):
        local_workers(5)
    monkeypatch.setenv(LOCAL_WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="at least one worker process"):
        local_workers(5)


def test_emulated_boards_share_two_threads_per_core_real_boards_get_one_each():
    from farm.scale.cluster import worker_threads

    emulated = {"qemu-m4f", "qemu-rv32", "avr-1284p", "qemu-m3", "avr-mega2560"}
    # the default inventory on 2 cores: two workers of one core each, two threads each
    assert worker_threads(["qemu-m4f", "qemu-rv32", "avr-1284p"], emulated, 1.0) == 2
    assert worker_threads(["qemu-m3", "avr-mega2560"], emulated, 1.0) == 2
    assert worker_threads(["qemu-m3"], emulated, 1.0) == 2  # its jobs and the host-only work
    assert worker_threads(["qemu-m3", "avr-mega2560"], emulated, 4.0) == 3  # never more than needed
    assert worker_threads([], emulated, 0.25) == 1  # host-only work alone: one, whatever the share
    # real boards wait on the board, not on this machine: a thread each, all at once
    assert worker_threads(["pico", "esp32", "nucleo"], emulated, 1.0) == 4
    assert worker_threads(["pico", "esp32", "qemu-m3", "qemu-m4f", "qemu-rv32"], emulated, 1.0) == 4


def test_a_nights_jobs_are_submitted_round_robin_over_the_boards():
    jobs = [("m4f", 1), ("m4f", 2), ("m4f", 3), ("m3", 1), ("avr", 1), ("avr", 2)]
    assert board_interleaved(jobs, lambda j: j[0]) == [("m4f", 1), ("m3", 1), ("avr", 1), ("m4f", 2), ("avr", 2),
                                                      ("m4f", 3)]
    assert board_interleaved([], lambda j: j[0]) == []


def test_a_worker_serves_its_hosts_boards_and_those_it_claims():
    devices = [SimpleNamespace(name="nucleo", host="bench-1"), SimpleNamespace(name="pico", host="bench-2"),
               SimpleNamespace(name="qemu-m3", host=None)]
    assert boards_for_host(devices, "bench-1") == ["nucleo"]
    assert boards_for_host(devices, "bench-2", ["qemu-m3"]) == ["pico", "qemu-m3"]


def _item(function, device, **params):
    return SimpleNamespace(fixturenames=["device", "measure", *params], function=function,
                           callspec=SimpleNamespace(params={"device": device, **params}))


def test_the_plan_is_what_the_tests_will_measure():
    device = load_inventory(REPO / "devices.yaml").devices[0]

    def test_two(device, measure):
        measure("sine", "int8"), measure("sine", "float32")

    def test_param(device, measure, variant):
        measure("sine", variant)

    def test_no_model(device, measure):
        pass

    plan = planned_measurements([_item(test_two, device), _item(test_param, device, variant="dynamic"),
                                 _item(test_param, device, variant="int8"), _item(test_no_model, device)])
    assert [(d.name, m, v) for d, m, v in plan] == [(device.name, "sine", "float32"), (device.name, "sine", "int8"),
                                                     (device.name, "sine", "dynamic")]


def test_a_board_no_worker_serves_is_infra_error_after_the_wait():
    from distributed import Client, LocalCluster

    from farm.board.leases import LeasePolicy
    from farm.scale.cluster import quiet_logs
    from farm.scale.dispatch import Dispatcher
    from farm.scale.jobs import MeasureSpec

    quiet_logs()
    device = load_inventory(REPO / "devices.yaml").devices[0]
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        dispatcher = Dispatcher(client, worker_wait=1.0)
        started = time.monotonic()
        outcome = dispatcher.outcome(MeasureSpec(device, "sine", "int8", LeasePolicy("sqlite://")))
        dispatcher.close()
    assert time.monotonic() - started < 30
    assert outcome.record.status == "infra-error"
    assert f"no worker advertises board:{device.name}" in outcome.record.message



def test_dask_background_work_the_farm_does_not_read_is_turned_down_unless_the_user_set_it(monkeypatch):
    assert engine_env_name("distributed.admin.system-monitor.interval") == "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL"
    for key in ENGINE_SETTINGS:
        monkeypatch.delenv(engine_env_name(key), raising=False)
    monkeypatch.setenv(engine_env_name("distributed.admin.tick.interval"), "50ms")  # the user's own choice
    saved = copy.deepcopy(dask.config.config)
    applied: dict[str, object] = {}
    try:
        dask.config.set({"distributed.admin.tick.interval": "50ms"})
        applied = quiet_engine()
        assert set(applied) == set(ENGINE_SETTINGS) - {"distributed.admin.tick.interval"}
        assert dask.config.get("distributed.admin.tick.interval") == "50ms"
        assert dask.config.get("distributed.worker.profile.enabled") is False
        assert dask.config.get("distributed.admin.system-monitor.interval") == "2s"
        # what a worker process started from here reads from its environment
        assert os.environ[engine_env_name("distributed.worker.profile.enabled")] == "False"
    finally:
        dask.config.config.clear()
        dask.config.config.update(saved)
        for key in applied:  # set by quiet_engine itself, not through monkeypatch
            os.environ.pop(engine_env_name(key), None)
