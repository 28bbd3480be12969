"""Getting a Dask cluster for a run: a local one sized to the machine, or a lab's by address.

The local cluster (the default of ``farm nightly``) is sized to the machine: one worker
process per core (``$FARM_LOCAL_WORKERS`` overrides; never more than one per board), the
boards dealt over them round-robin, each worker advertising its boards' resources with a
thread per board plus one for host-only work (as ``farm worker`` on a bench host: a
board's jobs run one at a time, different boards' at once) — except that the jobs of the
boards emulated on this machine and the host-only work share at most two threads per core
of the worker's share (:func:`worker_threads`: their jobs are this machine's CPU, and more
of them at once only add contention), and its scheduler on 127.0.0.1; it is started and
stopped by the command. More worker processes than cores would only add their start-up and
their own in-memory caches: the boards' emulators are processes of their own either way.
Host-only work spreads over the same workers. A lab's scheduler is reached at its address
(``tcp://`` on a trusted network, ``tls://`` with the inventory's certificates,
farm.scale.security).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from farm.scale.resources import resources_for, split_boards
from farm.scale.security import ClusterConfigError

#: ``--scheduler`` values that mean "no cluster: measure in this process, one board after the other"
IN_PROCESS = ("in-process", "none", "serial")
#: the ``--scheduler`` value (and default) that starts a local cluster for the command
LOCAL = "local"
#: the environment variable that names the scheduler (the default of ``--scheduler``)
SCHEDULER_ENV = "FARM_SCHEDULER"
#: the environment variable that sets a local cluster's worker processes (default: the cores)
LOCAL_WORKERS_ENV = "FARM_LOCAL_WORKERS"


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


def local_workers(boards: int, requested: int | str | None = None) -> int:
    """How many worker processes a local cluster for ``boards`` boards starts: ``requested``
    (else ``$FARM_LOCAL_WORKERS``, else this machine's cores), at most one per board, at least one."""
    raw = requested if requested is not None else os.environ.get(LOCAL_WORKERS_ENV)
    if raw is None or str(raw).strip() == "":
        wanted = machine_cores()
    else:
        try:
            wanted = int(raw)
        except ValueError:
            raise ClusterConfigError(f"{LOCAL_WORKERS_ENV}={raw!r}: not a number of worker processes") from None
        if wanted < 1:
            raise ClusterConfigError(f"{LOCAL_WORKERS_ENV}={raw!r}: a local cluster needs at least one worker process")
    return max(1, min(wanted, boards))


#: threads per core a local worker gives the jobs of emulated boards and host-only work together.
#: Measured on 2 cores, whole zoo, five emulated boards on two workers: a thread per board plus
#: one (7 jobs at once) 400-404 s and 1.09-1.12 x the serial night's CPU; two per core (4) 358 s
#: and 1.03 x, 1.96 cores busy.
EMULATED_THREADS_PER_CORE = 2


def worker_threads(boards: Sequence[str], emulated: Collection[str], cores: float) -> int:
    """Threads of a local worker serving ``boards`` on ``cores`` cores (its share of the machine):
    one per board that is not emulated here (its jobs wait on the board, not on this machine),
    and for the emulated ones plus the host-only work one each, at most
    :data:`EMULATED_THREADS_PER_CORE` per core (at least one)."""
    real = sum(1 for b in boards if b not in emulated)
    on_this_machine = len(boards) - real + 1  # the emulated boards' jobs and the host-only work
    return real + max(1, min(on_this_machine, round(EMULATED_THREADS_PER_CORE * cores)))


def machine_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def local_layout(boards: Sequence[str], workers: int | str | None = None) -> list[list[str]]:
    """The boards of each local worker process (farm.scale.resources.split_boards over
    :func:`local_workers` processes): every board on exactly one."""
    return split_boards(list(boards), local_workers(len(boards), workers))


def local_cluster(boards: Sequence[str], *, security: Any = None, host: str = "127.0.0.1",
                  workers: int | str | None = None, emulated: Collection[str] = ()) -> Any:
    """A local cluster: :func:`local_layout`'s worker processes, each advertising its boards
    (``board:<name>=1``) with :func:`worker_threads` threads (``emulated``: the boards that are
    emulators on this machine), the scheduler on ``host`` with no dashboard. Tasks lost with a
    worker are not retried elsewhere."""
    from distributed import Nanny, Scheduler, SpecCluster

    groups = local_layout(boards, workers)
    cores = machine_cores() / len(groups)
    worker_options: dict[str, Any] = {"memory_limit": 0, "host": host, "dashboard": False}
    if security is not None:
        worker_options["security"] = security
    workers_spec = {f"farm-{'-'.join(g) or f'host-{i}'}": {"cls": Nanny, "options": {
        **worker_options, "nthreads": worker_threads(g, emulated, cores), "resources": resources_for(g)}} for i, g in enumerate(groups)}
    scheduler_options: dict[str, Any] = {"host": host, "port": 0, "dashboard_address": None,
                                         "allowed_failures": 0}
    if security is not None:
        scheduler_options["security"] = security
    return SpecCluster(workers=workers_spec, scheduler={"cls": Scheduler, "options": scheduler_options},
                       security=security, silence_logs=logging.ERROR, name="tinyfarm")


def prepare_state() -> None:
    """What a state folder's jobs share, set up once before they run at once: the PlatformIO
    core dir (farm.build.platformio_env.ensure_core_dir is not safe to race on first use)."""
    from farm.build.platformio_env import ensure_core_dir
    from farm.config.state import state_dir

    ensure_core_dir(state_dir())


#: Dask settings the farm changes (unless the user's environment sets them): what Dask does on
#: its own in every process while it waits, measured on an idle local cluster of two workers
#: at 8% of a core with Dask's defaults and 1% with these. The farm reads none of it: the
#: statistical profiler samples every thread's stack every 10 ms for the dashboard; the event
#: loop health check ticks every 20 ms; the system monitor samples CPU, memory, disk and
#: network every 500 ms, and the memory monitor every 100 ms (workers run with no memory limit).
ENGINE_SETTINGS: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def engine_env_name(key: str) -> str:
    """The environment variable Dask reads ``key`` from (``DASK_`` + the path, ``.`` as ``__``)."""
    return "DASK_" + key.upper().replace(".", "__").replace("-", "_")


def quiet_engine() -> dict[str, object]:
    """:data:`ENGINE_SETTINGS` in this process's Dask configuration and environment (the worker
    processes it starts inherit both), except where the environment already sets one; returns
    what it set."""
    import dask

    applied = {key: value for key, value in ENGINE_SETTINGS.items() if engine_env_name(key) not in os.environ}
    for key, value in applied.items():
        os.environ[engine_env_name(key)] = str(value)
    dask.config.set(applied)
    return applied


def quiet_logs() -> None:
    """Dask's own INFO logging off (this process and the worker processes it starts):
    the farm's output says what the cluster does."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def open_cluster(scheduler: str, boards: Sequence[str], *, security: Any = None,
                 connect_timeout: float = 30.0, emulated: Collection[str] = ()) -> ClusterSession:
    """``scheduler`` = ``local``: a local cluster for ``boards`` (``emulated``: those that are
    emulators on this machine); else a client on that address."""
    quiet_logs()
    quiet_engine()
    from distributed import Client

    if scheduler.strip().lower() == LOCAL:
        prepare_state()
        cluster = local_cluster(boards, security=security, emulated=emulated)
        client = Client(cluster, security=security, set_as_default=False)
        client.wait_for_workers(len(cluster.workers), timeout=120)
        return ClusterSession(client, cluster)
    client = Client(scheduler, security=security, timeout=connect_timeout, set_as_default=False)
    return ClusterSession(client)


@contextmanager
def cluster_session(scheduler: str, boards: Sequence[str], *, security: Any = None,
                    emulated: Collection[str] = ()) -> Iterator[ClusterSession]:
    session = open_cluster(scheduler, boards, security=security, emulated=emulated)
    try:
        yield session
    finally:
        session.close()
