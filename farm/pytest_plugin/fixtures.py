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
    cluster = session_cluster(pytestconfig)
    if cluster is not None:  # where and when each job ran, for the run's summary and report
        store.update_run_details(run_id, cluster_jobs=cluster.job_spans())
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


@pytest.fixture(scope="session")
def farm_user_models(farm_state: Path) -> dict[str, Any]:
    """Session cache of the users' .tflite files measured by path: resolved path -> UserModel."""
    return {}


@pytest.fixture
def measure(device: Any, farm_state: Path, farm_results: tuple[Any, int],
            farm_measurements: dict[tuple[str, str, str], Any], pytestconfig: pytest.Config,
            farm_leases: Any, farm_lease_policy: Any, farm_user_models: dict[str, Any],
            farm_cells: dict[tuple[str, str, str], Any]) -> Measure:
    """``measure(model, variant, on=None)`` -> ResultRecord (measured once per session: in this
    process, or on the session's cluster, farm.pytest_plugin.cluster). ``model`` is a model's
    name (the project's, or the zoo's) or the path of a ``.tflite`` file, measured like
    ``farm run --model PATH.tflite`` (its variant is the file's; ``variant`` may be omitted and
    must agree when given), always in this process.

    A (device, model, variant) the session also asks a portability cell of (planned after
    collection: farm.pytest_plugin.planning.merged_runs) is measured together with its cell,
    in one job (farm.measure.portability_matrix.measure_and_cell): the board is flashed and
    loaded once for both, and the cell waits in ``farm_cells``."""
    from farm.pytest_plugin.planning import merged_of

    store, run_id = farm_results
    progress = pytestconfig.stash.get(PROGRESS_KEY, None)
    cluster = session_cluster(pytestconfig)
    merged = merged_of(pytestconfig)

    def _measure(model: str | Path, variant: str | None = None, on: Any = None) -> Any:
        target = on or device
        user = _user_model(model, variant, farm_state, farm_user_models)
        if user is None and variant is None:
            raise TypeError(f"measure({model!r}): name the variant (one of the model's variants)")
        name, variant = (user.art.name, user.art.variant) if user is not None else (str(model), variant)
        key = (target.name, user.key if user is not None else name, variant)
        if key not in farm_measurements:
            from farm.board.leases import quarantine_if_needed

            quarantined = farm_leases.quarantined(target.name)
            if quarantined is not None:  # found dead earlier in this run (or a recent one)
                pytest.skip(str(quarantined))
            started = time.monotonic()
            if cluster is not None and user is None:  # the job ran (or runs) on its board's worker
                outcome = cluster.dispatcher.outcome(cluster.spec(target, name, variant))
                if outcome.skipped is not None:
                    pytest.skip(outcome.skipped)
                record, cell = outcome.record, outcome.cell
                started = time.monotonic() - max(outcome.ended - outcome.started, 0.0)
            else:
                record, cell = _measured_here(target, name, variant, user, with_cell=user is None and key in merged)
            if cell is not None:  # made with the measurement: the ``portability`` fixture's
                farm_cells.setdefault(key, cell)
            quarantine_if_needed(farm_leases, target.name, record)
            record.id = store.add_result(run_id, record)
            record.run_id = run_id
            farm_measurements[key] = record
            if progress:
                progress.measured(record, time.monotonic() - started)
        return farm_measurements[key]

    def _measured_here(target: Any, model: str, variant: str, user: UserModel | None,
                       with_cell: bool) -> tuple[Any, Any]:
        from farm.board.leases import DeviceBusy
        from farm.measure.portability_matrix import measure_and_cell

        try:
            with farm_leases.leased(target.name, wait=farm_lease_policy.wait):  # held by `device` already
                record, cell = measure_and_cell(target, model, variant, farm_state,
                                                progress=progress.step if progress else _quiet,
                                                lease=farm_lease_policy, with_cell=with_cell,
                                                artifacts=user.art if user is not None else None)
        except DeviceBusy as exc:
            pytest.skip(str(exc))
        if user is not None:
            record.details = {**(record.details or {}), **user.provenance}
        return record, cell

    return _measure


class UserModel:
    """A user's .tflite measured by path: its artifacts (farm.models.user_tflite) and what each
    of its results records of it (the file, its reference, why it is the variant it is)."""

    def __init__(self, path: Path, art: Any, provenance: dict[str, Any]) -> None:
        self.key = str(path)
        self.art = art
        self.provenance = provenance


def _user_model(model: str | Path, variant: str | None, state: Path, cache: dict[str, Any]) -> UserModel | None:
    """The user's .tflite that ``model`` names (None: a model's name); a file that is not there,
    not a model the farm can build, or not the variant asked for fails the test, saying why."""
    from farm.models import registered_models
    from farm.models.user_tflite import is_tflite_path

    if not is_tflite_path(str(model)) or str(model) in registered_models():
        return None
    path = Path(model).resolve()
    if str(path) not in cache:
        cache[str(path)] = _load_user_model(path, state)
    user = cache[str(path)]
    if variant is not None and variant != user.art.variant:
        pytest.fail(f"{model} is a {user.art.variant} model ({user.provenance['variant_from_file']}); "
                    f"variant {variant!r} does not apply to it", pytrace=False)
    return user


def _load_user_model(path: Path, state: Path) -> UserModel:
    from farm import codegen
    from farm.models.native_output import native_output_to
    from farm.models.user_tflite import UserModelError, classify_file, user_artifacts

    if not path.is_file():
        pytest.fail(f"{path}: no such model file", pytrace=False)
    try:
        kind = classify_file(path)
        codegen.check_supported(path)
        with native_output_to(state / "logs" / "tensorflow.log"):
            art = user_artifacts(path, state / "models")
    except (UserModelError, codegen.CodegenError, ValueError) as exc:
        pytest.fail(str(exc) if str(path) in str(exc) else f"{path}: {exc}", pytrace=False)
    return UserModel(path, art, {"model_file": str(path), "model_reference": kind.reference,
                                 "variant_from_file": kind.reason})


@pytest.fixture(scope="session")
def farm_cells() -> dict[tuple[str, str, str], Any]:
    """Session cache: each (device, model, variant) portability cell is made once."""
    return {}


@pytest.fixture
def portability(device: Any, farm_state: Path, farm_cells: dict[tuple[str, str, str], Any],
                pytestconfig: pytest.Config, farm_leases: Any, farm_lease_policy: Any,
                request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``portability(model, variant)`` -> the ``farm portability`` cell of the device
    (farm.measure.portability_matrix.PortabilityCell): the static checks of the very ELF, then
    one inference on the board (and, on an emulated FPU-less board, its soft-float calls). Made
    once per session: in this process, or as a board job on the session's cluster (a job the
    cluster lost is an ``infra-error`` cell naming the worker). When the session also measures
    the (device, model, variant), the measurement's job makes the cell (``measure``); only a
    measurement that did not get as far as the test samples' outputs leaves the cell to a job
    of its own."""
    from farm.measure.portability_matrix import PortabilityCell, lost_cell, portability_cell
    from farm.pytest_plugin.planning import merged_of

    cluster = session_cluster(pytestconfig)
    progress = pytestconfig.stash.get(PROGRESS_KEY, None)
    merged = merged_of(pytestconfig)

    def _cell(model: str, variant: str) -> Any:
        key = (device.name, model, variant)
        if key in merged and key not in farm_cells:  # made with the measurement, which stores its record
            try:
                record = request.getfixturevalue("measure")(model, variant)
            except NotImplementedError:  # no driver reaches the board: the cell's own job checks it statically
                record = None
            if key not in farm_cells and cluster is not None and device.name in cluster.dispatcher.dead:
                farm_cells[key] = lost_cell(device, model, variant, str(getattr(record, "message", "") or "lost"))
        if key not in farm_cells:
            quarantined = farm_leases.quarantined(device.name)
            if quarantined is not None:
                pytest.skip(str(quarantined))
            if cluster is not None and cluster.cells is not None:
                outcome = cluster.cells.outcome(cluster.spec(device, model, variant))
                if outcome.skipped is not None:
                    pytest.skip(outcome.skipped)
                cell = outcome.record
                if not isinstance(cell, PortabilityCell):
                    cell = lost_cell(device, model, variant, str(getattr(cell, "message", "") or "lost"))
            else:
                from farm.board.leases import DeviceBusy

                try:
                    with farm_leases.leased(device.name, wait=farm_lease_policy.wait):  # held by `device`
                        cell = portability_cell(device, model, variant, farm_state, lease=farm_lease_policy,
                                                progress=progress.step if progress else _quiet)
                except DeviceBusy as exc:
                    pytest.skip(str(exc))
            farm_cells[key] = cell
        return farm_cells[key]

    return _cell


@pytest.fixture(scope="session")
def farm_static_checks() -> dict[tuple[str, str, str], Any]:
    """Session cache: each (device, model, variant) is checked statically once."""
    return {}


@pytest.fixture
def static_portability(device: Any, farm_state: Path, farm_static_checks: dict[tuple[str, str, str], Any],
                       pytestconfig: pytest.Config) -> Callable[..., Any]:
    """``static_portability(model, variant)`` -> farm.measure.static_check.StaticCheck: the static
    portability report of the very ELF that would be flashed on the device (or why it does not
    fit). Made once per session: on the session's cluster by the host-only prepare job of that
    (device, model, variant), on whichever worker ran it; in this process otherwise (and when
    the cluster could not: the check then fails here the way it failed there)."""
    from farm.measure.static_check import static_check

    cluster = session_cluster(pytestconfig)

    def _static(model: str, variant: str) -> Any:
        key = (device.name, model, variant)
        if key not in farm_static_checks:
            check = cluster.dispatcher.static(cluster.spec(device, model, variant)) if cluster is not None else None
            farm_static_checks[key] = check if check is not None else static_check(device, model, variant,
                                                                                   farm_state)
        return farm_static_checks[key]

    return _static
