"""The jobs a worker runs: plain picklable data in, the farm's own records out.

``measure_job`` (the nightly's and ``farm run``'s measurement), ``portability_job``
(a ``farm portability`` cell) and ``profile_job`` (``farm profile``) touch a board:
they are submitted with that board's resource (farm.scale.resources) and call the
one job function of farm.measure. ``prepare_job`` is host-only work (model
conversion, code generation, the PlatformIO build, the static portability check; no
resource) on any worker: it fills that worker's caches, keyed by content hash, and
hands the built ELF back by value (farm.build.artifacts.BuildArtifact), which the
board job installs into its own worker's cache when it is not there (a lab: another
machine), so every firmware is built once and the board job finds it by its build
key. The record carries the ELF's sha256.

On the worker a board on this worker's bench host (``serial.host`` equal to
``$FARM_WORKER_HOST``, set by ``farm worker``) is reached over its local serial
port, not over SSH. A device another run holds or that is quarantined comes back
as :class:`JobOutcome` ``skipped`` (the exceptions themselves do not pickle).
Each job logs ``start`` / ``end`` on the Dask event topic :data:`JOB_TOPIC` and
its steps on :data:`PROGRESS_TOPIC`.

A job runs under its controller's project (tinyfarm.yaml, farm.project.current): the spec
carries the project file's path, and the worker activates it before it builds, so the
project's models are known there (a local cluster's workers also inherit $FARM_PROJECT;
``farm worker`` activates its own ``--project`` / ./tinyfarm.yaml at start). A path this
worker's machine does not have leaves the worker's own project in place.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

from farm.board.leases import DeviceBusy, DeviceQuarantined, LeasePolicy
from farm.config.state import state_dir
from farm.project.current import current_project, use_project
from farm.store.records import ResultRecord

#: the Dask event topic of job starts and ends (the controller's job log)
JOB_TOPIC = "farm-jobs"
#: the Dask event topic of a job's steps (building, flashing, measuring ...)
PROGRESS_TOPIC = "farm-progress"
#: set by ``farm worker``: the bench host this worker runs on
WORKER_HOST_ENV = "FARM_WORKER_HOST"
#: the ``kind`` of a host-only prepare job's events on JOB_TOPIC (a board job's: BOARD)
PREPARE = "prepare"
BOARD = "board"


@dataclass(frozen=True)
class MeasureSpec:
    """One (device, model, variant) measurement, as it travels to a worker."""

    device: Any  # farm.config.inventory.Device (picklable)
    model: str
    variant: str
    lease: LeasePolicy
    kernels: str = "optimized"
    #: also the portability cell, from the measurement's own job (farm.measure.portability_matrix.measure_and_cell)
    cell: bool = False
    #: the controller's project file (absolute), activated on the worker before it builds
    project: str | None = field(default_factory=lambda: active_project_file())

    @property
    def board(self) -> str:
        return self.device.name

    @property
    def label(self) -> str:
        return f"{self.device.name} {self.model}/{self.variant}"


@dataclass
class JobOutcome:
    """What a board job hands back: its record (None when skipped), where and when it ran."""

    board: str
    worker: str
    started: float
    ended: float
    record: Any = None  # ResultRecord | PortabilityCell | Profile
    skipped: str | None = None  # DeviceBusy / DeviceQuarantined: why the board was not used
    details: dict[str, Any] = field(default_factory=dict)
    #: a measurement's portability cell made from the same job (MeasureSpec.cell); None: not
    #: asked for, or the measurement did not get far enough on the board to stand for it
    cell: Any = None


def active_project_file() -> str | None:
    """The project file this process runs under (None: the zoo), as a job carries it."""
    project = current_project()
    return str(project.path) if project is not None else None


def enter_project(project: str | None) -> None:
    """Activate the controller's project on this worker (farm.project.current.use_project);
    a path this machine does not have leaves the worker's own project in place."""
    from pathlib import Path

    use_project(project if project and Path(project).is_file() else None)


def worker_address() -> str:
    """The address of the Dask worker running this code ("in-process" outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "in-process"


def log_event(topic: str, message: dict[str, Any]) -> None:
    """Post ``message`` on a Dask event topic (nothing outside a worker)."""
    try:
        from distributed import get_worker

        get_worker().log_event(topic, message)
    except (ImportError, ValueError):
        pass


def reach_locally(device: Any) -> Any:
    """``device`` as this worker reaches it: a board on this worker's bench host
    (``$FARM_WORKER_HOST``) over its local serial port, not over SSH."""
    host = os.environ.get(WORKER_HOST_ENV)
    serial = getattr(device, "serial", None)
    if host and serial is not None and serial.host == host:
        return device.model_copy(update={"serial": serial.model_copy(update={"host": None})})
    return device


def current_key() -> str:
    """The Dask key of the task running this code ("" outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().get_current_task())
    except (ImportError, ValueError):
        return ""


def _progress(board: str, key: str) -> Any:
    def step(message: str) -> None:
        log_event(PROGRESS_TOPIC, {"board": board, "key": key, "message": message})

    return step


def prepare_job(device: Any, model: str, variant: str, kernels: str = "optimized",
                project: str | None = None) -> dict[str, Any]:
    """Host-only work of a (device, model, variant): the model's variant and its firmware for
    the device, into this worker's caches (under the controller's ``project``), and the static
    portability check of that ELF (``static``: farm.measure.static_check.StaticCheck, what the
    HIL suite's static tests assert on). Never raises: the board job meets the same failure
    again and reports it through the one map (farm.measure.job.status_of); a static test
    whose check failed here runs it in the controller, which fails the same way."""
    from farm.build.artifacts import export_build
    from farm.measure.static_check import static_check

    state = state_dir()
    started = time.monotonic()
    worker = worker_address()
    event = {"kind": PREPARE, "key": current_key(), "board": device.name, "worker": worker, "pid": os.getpid()}
    log_event(JOB_TOPIC, {**event, "event": "start", "at": time.time()})
    try:
        enter_project(project)
        check = replace(static_check(device, model, variant, state, kernels), made_on=worker)
    except Exception as exc:  # noqa: BLE001 -- reported by the board job, by the one map
        return {"error": f"{type(exc).__name__}: {exc}", "worker": worker}
    finally:
        log_event(JOB_TOPIC, {**event, "event": "end", "at": time.time()})
    done: dict[str, Any] = {"static": check, "prepare_seconds": round(time.monotonic() - started, 3),
                            "worker": worker}
    if check.build is not None:  # the ELF by value, for a board job on a machine with another cache
        done["artifact"] = export_build(check.build, state)
        done.update(firmware_cached=check.build.cached, build_seconds=round(check.build.build_seconds, 3))
    return done


def receive_artifact(prepared: dict[str, Any] | None) -> str | None:
    """Install the ELF the prepare job shipped into this worker's build cache (a lab: the
    prepare job ran on another machine), so the board job finds it built; what happened, for
    the record's details (None: nothing shipped)."""
    from farm.build.artifacts import ArtifactError, install_build

    artifact = (prepared or {}).get("artifact")
    if artifact is None:
        return None
    try:
        installed = install_build(artifact, state_dir())
    except (ArtifactError, OSError) as exc:  # built here instead, from the same content hash
        return f"not installed ({exc}); built here"
    return (f"installed from {prepared.get('worker')} (build {artifact.key[:20]}, {artifact.size} bytes)"
            if installed else "already in this worker's cache")


def run_board_job(board: str, key: str, run: Any) -> JobOutcome:
    """``run()`` as the board job ``key`` of ``board``: its start and end on JOB_TOPIC (the end
    also when it raises, with the error), a busy or quarantined board as ``skipped``."""
    worker = worker_address()
    started = time.time()
    event = {"kind": BOARD, "key": key, "board": board, "worker": worker, "pid": os.getpid()}
    log_event(JOB_TOPIC, {**event, "event": "start", "at": started})
    failed = None
    try:
        record = run()
        skipped = None
    except (DeviceBusy, DeviceQuarantined) as exc:
        record, skipped = None, str(exc)
    except Exception as exc:  # the controller reports it (farm.scale.dispatch); the end is logged first
        failed = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        ended = time.time()
        log_event(JOB_TOPIC, {**event, "event": "end", "at": ended, **({"error": failed} if failed else {})})
    return JobOutcome(board, worker, started, ended, record, skipped)


def measure_job(spec: MeasureSpec, prepared: dict[str, Any] | None = None, key: str = "") -> JobOutcome:
    """The measurement on the board (needs ``board:<name>``): farm.measure.job.measure_one,
    with where and when it ran in the record's details (``worker``, ``job_started``, ``job_ended``);
    with ``spec.cell`` also its portability cell from the same job (outcome.cell)."""
    from farm.measure.portability_matrix import measure_and_cell

    enter_project(spec.project)
    shipped = receive_artifact(prepared)
    cells: list[Any] = []

    def run() -> ResultRecord:
        record, cell = measure_and_cell(reach_locally(spec.device), spec.model, spec.variant, state_dir(),
                                        kernels=spec.kernels, lease=spec.lease, progress=_progress(spec.board, key),
                                        with_cell=spec.cell)
        cells.append(cell)
        return record

    outcome = run_board_job(spec.board, key, run)
    outcome.cell = cells[0] if cells else None
    record = outcome.record
    if record is not None:
        record.host = spec.device.host  # where the board is, as the inventory says
        details = dict(record.details or {})
        if prepared and "firmware_cached" in prepared and "firmware_cached" in details:
            details["firmware_cached"] = bool(prepared["firmware_cached"]) and bool(details["firmware_cached"])
        if prepared and "prepare_seconds" in prepared:  # the host-only job before it: where and how long
            details.update(prepare_seconds=prepared["prepare_seconds"], prepare_worker=prepared.get("worker"))
        if shipped is not None:
            details["artifact"] = shipped
        details.update(worker=outcome.worker, job_started=round(outcome.started, 3),
                       job_ended=round(outcome.ended, 3), worker_pid=os.getpid())
        record.details = details
    return outcome


def portability_job(spec: MeasureSpec, prepared: dict[str, Any] | None = None, key: str = "") -> JobOutcome:
    """A ``farm portability`` cell on the board (needs ``board:<name>``): one inference, the
    soft-float count (farm.measure.portability_matrix.portability_cell)."""
    from farm.measure.portability_matrix import portability_cell

    enter_project(spec.project)
    receive_artifact(prepared)
    return run_board_job(spec.board, key, lambda: portability_cell(
        reach_locally(spec.device), spec.model, spec.variant, state_dir(), lease=spec.lease,
        progress=_progress(spec.board, key)))


def profile_job(spec: MeasureSpec, prepared: dict[str, Any] | None = None, key: str = "") -> JobOutcome:
    """``farm profile`` of one model on the board (needs ``board:<name>``)."""
    from farm.measure.profile import profile_one

    enter_project(spec.project)
    receive_artifact(prepared)
    return run_board_job(spec.board, key, lambda: profile_one(
        reach_locally(spec.device), spec.model, spec.variant, state=state_dir(), kernels=spec.kernels,
        lease=spec.lease, progress=_progress(spec.board, key)))


def noop_job(seconds: float = 0.0, key: str = "") -> float:
    """A job that does nothing for ``seconds`` (the scheduler-overhead benchmark's)."""
    if seconds:
        time.sleep(seconds)
    return time.time()
