"""The session's cluster: after collection, every planned measurement goes to Dask.

With ``--farm-scheduler`` (or ``$FARM_SCHEDULER``) set to ``local`` (a local cluster
for the session, one worker process per core: farm.scale.cluster) or a scheduler's address,
the plugin submits at the end of collection every (device, model, variant) the
collected tests will measure (farm.pytest_plugin.planning) and the ``measure``
fixture returns the finished job's record (farm.scale.dispatch.Dispatcher); the
``portability`` fixture's cells are board jobs too, and the static portability
checks (``static_portability``) come from the host-only prepare job of each
(device, model, variant), one per run, on any worker. Without
it (``in-process``, the default of a plain ``pytest``) ``measure`` measures in this
process, one board after the other, as it always did. Either way the controller
(this process) stores the results, and the tests, their names and JUnit XML are the
same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from farm.pytest_plugin.hooks import PROGRESS_KEY, lease_policy_for, load_inventory_for
from farm.pytest_plugin.planning import MERGED_KEY, merged_runs, planned_measurements


@dataclass
class SessionCluster:
    """The cluster a session measures on, its dispatchers (measurements; portability cells),
    and the lease policy of its jobs."""

    session: Any  # farm.scale.cluster.ClusterSession
    dispatcher: Any  # farm.scale.dispatch.Dispatcher of measure jobs
    lease: Any  # farm.board.leases.LeasePolicy
    cells: Any = None  # farm.scale.dispatch.Dispatcher of portability jobs (the ``portability`` fixture)
    #: (device, model, variant) whose measure job also makes the cell (planning.merged_runs)
    merged: frozenset[tuple[str, str, str]] = frozenset()

    def spec(self, device: Any, model: str, variant: str) -> Any:
        from farm.scale.jobs import MeasureSpec

        return MeasureSpec(device, model, variant, self.lease, cell=(device.name, model, variant) in self.merged)

    def job_spans(self) -> list[dict[str, Any]]:
        """Every job of the session on the cluster so far, in start order: its key, kind
        (board / prepare), board, worker, start and end (epoch seconds; ``ended`` None: no end
        seen), and ``error`` when it raised (farm.scale.dispatch.job_spans)."""
        from farm.scale.dispatch import job_spans

        log = list(self.dispatcher.job_log) + (list(self.cells.job_log) if self.cells is not None else [])
        return job_spans(log)

    def close(self) -> None:
        try:
            self.dispatcher.close()
            if self.cells is not None:
                self.cells.close()
        finally:
            self.session.close()


CLUSTER_KEY = pytest.StashKey[SessionCluster]()


def scheduler_of(config: pytest.Config) -> str | None:
    """The session's scheduler (``--farm-scheduler``, else $FARM_SCHEDULER); None: in process."""
    from farm.scale.cluster import SCHEDULER_ENV, is_in_process

    scheduler = config.getoption("--farm-scheduler") or os.environ.get(SCHEDULER_ENV)
    return None if is_in_process(scheduler) else scheduler


def session_cluster(config: pytest.Config) -> SessionCluster | None:
    """The session's cluster, None when it measures in process."""
    return config.stash.get(CLUSTER_KEY, None)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.getoption("collectonly"):
        return
    users = [i for i in session.items
             if {"measure", "portability", "static_portability"} & set(getattr(i, "fixturenames", ()))]
    merged = merged_runs(users)
    config.stash[MERGED_KEY] = merged
    scheduler = scheduler_of(config)
    if scheduler is None or not users:
        return
    from farm.scale.cluster import open_cluster
    from farm.scale.dispatch import Dispatcher, board_interleaved
    from farm.scale.jobs import portability_job
    from farm.scale.security import ClusterConfigError, security_for

    inventory = load_inventory_for(config)
    try:
        security = security_for(inventory.cluster_config, inventory.source)
    except ClusterConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    used = {i.callspec.params["device"].name for i in users
            if getattr(i, "callspec", None) is not None and "device" in i.callspec.params}
    boards = [d.name for d in inventory.devices if d.name in used] or inventory.names
    try:
        cluster = open_cluster(scheduler, boards, security=security,
                               emulated={d.name for d in inventory.devices if d.is_emulated})
    except OSError as exc:
        raise pytest.UsageError(f"--farm-scheduler {scheduler}: cannot reach the scheduler: {exc}") from None
    except ClusterConfigError as exc:  # the local cluster's size ($FARM_LOCAL_WORKERS)
        raise pytest.UsageError(f"--farm-scheduler {scheduler}: {exc}") from None
    progress = config.stash.get(PROGRESS_KEY, None)
    run_id = config.getoption("--farm-run-id")
    lease = lease_policy_for(config, purpose=f"run {run_id}" if run_id is not None else "pytest session")
    prepared: dict[Any, Any] = {}  # one host-only prepare job per (device, model, variant), shared
    dispatcher = Dispatcher(cluster.client, job_timeout=float(config.getoption("--farm-job-timeout")),
                            worker_wait=float(config.getoption("--farm-worker-wait")),
                            progress=progress.step if progress else None, prepared=prepared)
    cells = Dispatcher(cluster.client, job_timeout=float(config.getoption("--farm-job-timeout")),
                       worker_wait=float(config.getoption("--farm-worker-wait")),
                       progress=progress.step if progress else None, job=portability_job, prepared=prepared)
    state = SessionCluster(cluster, dispatcher, lease, cells, merged)
    config.stash[CLUSTER_KEY] = state
    planned = [(dispatcher.submit, state.spec(*p)) for p in planned_measurements(users)]
    planned += [(cells.submit, state.spec(*p)) for p in planned_measurements(users, "portability")
                if (p[0].name, p[1], p[2]) not in merged]  # the measure job makes those
    planned += [(dispatcher.prepare, state.spec(*p)) for p in planned_measurements(users, "static_portability")]
    for submit, spec in board_interleaved(planned, lambda job: job[1].board):
        submit(spec)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(CLUSTER_KEY, None)
    if state is not None:
        del config.stash[CLUSTER_KEY]
        state.close()
