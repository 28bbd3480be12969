"""Fixtures: the inventory, the state folder, the results store, a device, measure()."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from farm.pytest_plugin.cluster import session_cluster
from farm.pytest_plugin.hooks import PROGRESS_KEY, db_url_for, lease_policy_for, load_inventory_for

Measure = Callable[..., Any]


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="session")
def farm_inventory(pytestconfig: pytest.Config) -> Any:
    return load_inventory_for(pytestconfig)


@pytest.fixture(scope="session")
def farm_state() -> Path:
    from farm.config.state import state_dir

    return state_dir()


@pytest.fixture(scope="session")
def farm_results(pytestconfig: pytest.Config, farm_state: Path) -> Iterator[tuple[Any, int]]:
    """(ResultsStore, run id) — results measured in this session are stored there."""
    from farm.store.results import ResultsStore
    from farm.store.vcs import git_commit

    store = ResultsStore(db_url_for(pytestconfig))
    run_id = pytestconfig.getoption("--farm-run-id")
    own_run = run_id is None
    if own_run:
        run_id = store.start_run("pytest", git_commit())
    yield store, run_id
    if own_run:
        store.finish_run(run_id, "finished")


@pytest.fixture(scope="session")
def farm_measurements() -> dict[tuple[str, str, str], Any]:
    """Session cache: each (device, model, variant) is measured once."""
    return {}


@pytest.fixture(scope="session")
def farm_lease_policy(pytestconfig: pytest.Config, farm_results: tuple[Any, int]) -> Any:
    """How this session leases a device (farm.board.leases.LeasePolicy): the results database,
    ``--farm-lease-wait`` (0 with ``--farm-skip-busy``), and the run it is for."""
    _store, run_id = farm_results
    return lease_policy_for(pytestconfig, purpose=f"run {run_id}")


@pytest.fixture(scope="session")
def farm_leases(farm_lease_policy: Any) -> Iterator[Any]:
    """This session's LeaseManager: a device is used by one run at a time (farm.board.leases)."""
    from farm.board.leases import LeaseManager

    manager = LeaseManager(farm_lease_policy.db_url, purpose=farm_lease_policy.purpose)
    yield manager
    manager.close()


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest, farm_leases: Any, farm_lease_policy: Any) -> Iterator[Any]:
    """One inventory device (parametrized by the plugin over ``--farm-devices``), leased to
    this session while its tests run; a device another run holds is waited for
    (``--farm-lease-wait``) or skipped (``--farm-skip-busy``), a quarantined one skipped.
    On a cluster the jobs lease the board on their worker, one job at a time (the
    scheduler runs one job per board; the lease keeps other runs away)."""
    from farm.board.leases import DeviceBusy, DeviceQuarantined

    target = request.param
    if session_cluster(request.config) is not None:
        yield target
        return
    try:
        farm_leases.acquire(target.name, wait=farm_lease_policy.wait)
    except (DeviceBusy, DeviceQuarantined) as exc:
        pytest.skip(str(exc))
    try:
        yield target
    finally:
        farm_leases.release(target.name)


@pytest.fixture
def measure(device: Any, farm_state: Path, farm_results: tuple[Any, int],
            farm_measurements: dict[tuple[str, str, str], Any], pytestconfig: pytest.Config,
            farm_leases: Any, farm_lease_policy: Any) -> Measure:
    """``measure(model, variant, device=None)`` -> ResultRecord (measured once per session:
    in this process, or on the session's cluster, farm.pytest_plugin.cluster)."""
    from farm.measure.job import measure_one

    store, run_id = farm_results
    progress = pytestconfig.stash.get(PROGRESS_KEY, None)
    cluster = session_cluster(pytestconfig)

    def _measure(model: str, variant: str, on: Any = None) -> Any:
        target = on or device
        key = (target.name, model, variant)
        if key not in farm_measurements:
            from farm.board.leases import quarantine_if_needed

            quarantined = farm_leases.quarantined(target.name)
            if quarantined is not None:  # found dead earlier in this run (or a recent one)
                pytest.skip(str(quarantined))
            started = time.monotonic()
            if cluster is not None:  # the job ran (or runs) on its board's worker
                outcome = cluster.dispatcher.outcome(cluster.spec(target, model, variant))
                if outcome.skipped is not None:
                    pytest.skip(outcome.skipped)
                record = outcome.record
                started = time.monotonic() - max(outcome.ended - outcome.started, 0.0)
            else:
                record = _measured_here(target, model, variant)
            quarantine_if_needed(farm_leases, target.name, record)
            record.id = store.add_result(run_id, record)
            record.run_id = run_id
            farm_measurements[key] = record
            if progress:
                progress.measured(record, time.monotonic() - started)
        return farm_measurements[key]

    def _measured_here(target: Any, model: str, variant: str) -> Any:
        from farm.board.leases import DeviceBusy

        try:
            with farm_leases.leased(target.name, wait=farm_lease_policy.wait):  # held by `device` already
                record = measure_one(target, model, variant, state=farm_state,
                                     progress=progress.step if progress else _quiet, lease=farm_lease_policy)
        except DeviceBusy as exc:
            pytest.skip(str(exc))
        return record

    return _measure
