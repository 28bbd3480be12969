"""Getting a Dask cluster for a run: a local one sized to the machine, or a lab's by address.

The local cluster (the default of ``farm nightly``) has one worker process per board
(each advertising exactly that board's resource, one thread: a job at a time per
process, so nothing in a job needs to be thread-safe) and its scheduler on
127.0.0.1; it is started and stopped by the command. Host-only work spreads over the
same workers. A lab's scheduler is reached at its address (``tcp://`` on a trusted
network, ``tls://`` with the inventory's certificates, farm.scale.security).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from farm.scale.resources import resources_for

#: ``--scheduler`` values that mean "no cluster: measure in this process, one board after the other"
IN_PROCESS = ("in-process", "none", "serial")
#: the ``--scheduler`` value (and default) that starts a local cluster for the command
LOCAL = "local"
#: the environment variable that names the scheduler (the default of ``--scheduler``)
SCHEDULER_ENV = "FARM_SCHEDULER"


def is_in_process(scheduler: str | None) -> bool:
    return scheduler is None or scheduler.strip().lower() in IN_PROCESS


@dataclass
class ClusterSession:
    """A client on a cluster, and the local cluster it started (None for a lab's)."""

    client: Any  # distributed.Client
    local: Any = None  # distributed.SpecCluster

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        finally:
            if self.local is not None:
                self.local.close(timeout=20)


def local_cluster(boards: Sequence[str], *, security: Any = None, host: str = "127.0.0.1",
                  host_workers: int = 0) -> Any:
    """A local cluster: one worker process per board (``board:<name>=1``, one thread) plus
    ``host_workers`` workers without boards (at least one worker in all), the scheduler
    on ``host`` with no dashboard. Tasks lost with a worker are not retried elsewhere."""
    from distributed import Nanny, Scheduler, SpecCluster

    groups: list[list[str]] = [[b] for b in boards] + [[] for _ in range(host_workers)]
    if not groups:
        groups = [[]]
    worker_options: dict[str, Any] = {"nthreads": 1, "memory_limit": 0, "host": host, "dashboard": False}
    if security is not None:
        worker_options["security"] = security
    workers = {f"farm-{'-'.join(g) or f'host-{i}'}": {"cls": Nanny, "options": {**worker_options,
                                                                               "resources": resources_for(g)}}
               for i, g in enumerate(groups)}
    scheduler_options: dict[str, Any] = {"host": host, "port": 0, "dashboard_address": None,
                                         "allowed_failures": 0}
    if security is not None:
        scheduler_options["security"] = security
    return SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": scheduler_options},
                       security=security, silence_logs=logging.ERROR, name="tinyfarm")


def prepare_state() -> None:
    """What a state folder's jobs share, set up once before they run at once: the PlatformIO
    core dir (farm.build.platformio_env.ensure_core_dir is not safe to race on first use)."""
    from farm.build.platformio_env import ensure_core_dir
    from farm.config.state import state_dir

    ensure_core_dir(state_dir())


def quiet_logs() -> None:
    """Dask's own INFO logging off (this process and the worker processes it starts):
    the farm's output says what the cluster does."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def open_cluster(scheduler: str, boards: Sequence[str], *, security: Any = None,
                 connect_timeout: float = 30.0) -> ClusterSession:
    """``scheduler`` = ``local``: a local cluster for ``boards``; else a client on that address."""
    quiet_logs()
    from distributed import Client

    if scheduler.strip().lower() == LOCAL:
        prepare_state()
        cluster = local_cluster(boards, security=security)
        client = Client(cluster, security=security, set_as_default=False)
        client.wait_for_workers(len(cluster.workers), timeout=120)
        return ClusterSession(client, cluster)
    client = Client(scheduler, security=security, timeout=connect_timeout, set_as_default=False)
    return ClusterSession(client)


@contextmanager
def cluster_session(scheduler: str, boards: Sequence[str], *, security: Any = None) -> Iterator[ClusterSession]:
    session = open_cluster(scheduler, boards, security=security)
    try:
        yield session
    finally:
        session.close()
