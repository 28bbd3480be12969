"""Fixtures: the inventory, the state folder, the results store, a device, measure()."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from farm.pytest_plugin.hooks import load_inventory_for

Measure = Callable[..., Any]


@pytest.fixture(scope="session")
def farm_inventory(pytestconfig: pytest.Config) -> Any:
    return load_inventory_for(pytestconfig)


@pytest.fixture(scope="session")
def farm_state() -> Path:
    from farm.state import state_dir

    return state_dir()


@pytest.fixture(scope="session")
def farm_results(pytestconfig: pytest.Config, farm_state: Path) -> Iterator[tuple[Any, int]]:
    """(ResultsStore, run id) — results measured in this session are stored there."""
    from farm.results import ResultsStore
    from farm.state import default_db_url
    from farm.vcs import git_commit

    store = ResultsStore(pytestconfig.getoption("--farm-db") or default_db_url(farm_state))
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
def device(request: pytest.FixtureRequest) -> Any:
    """One inventory device (parametrized by the plugin over ``--farm-devices``)."""
    return request.param


@pytest.fixture
def measure(device: Any, farm_state: Path, farm_results: tuple[Any, int],
            farm_measurements: dict[tuple[str, str, str], Any]) -> Measure:
    """``measure(model, variant, device=None)`` -> ResultRecord (measured once per session)."""
    from farm.pipeline import measure_one

    store, run_id = farm_results

    def _measure(model: str, variant: str, on: Any = None) -> Any:
        target = on or device
        key = (target.name, model, variant)
        if key not in farm_measurements:
            record = measure_one(target, model, variant, state=farm_state)
            store.add_result(run_id, record)
            farm_measurements[key] = record
        return farm_measurements[key]

    return _measure
