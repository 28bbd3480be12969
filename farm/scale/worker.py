"""``farm worker``'s work: a Dask worker that advertises this bench host's boards.

The worker joins the scheduler at ``scheduler`` (TLS when the inventory's ``cluster:``
section names certificates: farm.scale.security), advertises ``board:<name>=1`` for
each board it serves (farm.scale.resources) and runs the jobs of farm.scale.jobs with
one thread per board, so its boards run at once. It reaches its boards locally
(``$FARM_WORKER_HOST`` names this host for farm.scale.jobs.reach_locally).

Its jobs run under the project ``farm worker`` was started with (``--project``, else
$FARM_PROJECT, else ./tinyfarm.yaml: activated by the command), or, when a job carries its
controller's project file and this machine has that file, under the controller's
(farm.scale.jobs.enter_project): a worker on the controller's machine knows its models.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import Any

from farm.scale.jobs import WORKER_HOST_ENV
from farm.scale.resources import resources_for


class WorkerRefused(RuntimeError):
    """The worker could not join the scheduler (nobody there, or the TLS handshake failed)."""


def serve(scheduler: str, boards: Sequence[str], *, host_name: str, security: Any = None,
          listen: str | None = None, name: str | None = None, nthreads: int | None = None,
          connect_timeout: float = 30.0, started: Callable[[str], None] | None = None) -> None:
    """Run the worker until the scheduler goes away or the process is stopped."""
    os.environ[WORKER_HOST_ENV] = host_name
    from farm.scale.cluster import prepare_state, quiet_engine

    quiet_engine()
    prepare_state()  # this host's state folder, before its jobs run at once
    asyncio.run(_serve(scheduler, list(boards), security=security, listen=listen, name=name,
                       nthreads=nthreads or max(1, len(boards)), connect_timeout=connect_timeout, started=started))


async def _serve(scheduler: str, boards: list[str], *, security: Any, listen: str | None, name: str | None,
                 nthreads: int, connect_timeout: float, started: Callable[[str], None] | None) -> None:
    from distributed import Worker

    options: dict[str, Any] = {"resources": resources_for(boards), "nthreads": nthreads,
                               "death_timeout": connect_timeout, "dashboard": False, "memory_limit": 0}
    if security is not None:
        options["security"] = security
    if listen is not None:
        options["host"] = listen
    if name is not None:
        options["name"] = name
    worker = Worker(scheduler, **options)
    try:
        await asyncio.wait_for(worker.start(), timeout=connect_timeout + 5)
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        await worker.close(timeout=5)
        raise WorkerRefused(f"could not join the scheduler at {scheduler} within {connect_timeout:.0f} s "
                            f"(is it running? is this worker's TLS certificate the cluster's?): {exc}") from None
    if worker.status.name not in ("running", "paused"):
        raise WorkerRefused(f"the scheduler at {scheduler} did not take this worker (status {worker.status.name})")
    if started is not None:
        started(worker.address)
    await worker.finished()
