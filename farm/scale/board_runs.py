"""A command's board jobs on a cluster, outside pytest: ``farm portability`` and ``farm profile``.

:func:`run_on_cluster` opens the cluster (a local one for the chosen boards, or a lab's by
address, with the inventory's TLS), submits every spec's prepare job and board job through
one :class:`farm.scale.dispatch.Dispatcher` (so each board runs one job at a time, and a lost
worker or a hung job ends that board's jobs as ``infra-error``), and yields each spec with
its outcome in the order given, as soon as it is done. The caller turns outcomes into its
own rows; nothing here knows what a cell or a profile is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from farm.scale.cluster import open_cluster
from farm.scale.dispatch import DEFAULT_JOB_TIMEOUT, DEFAULT_WORKER_WAIT, BoardJob, Dispatcher
from farm.scale.jobs import JobOutcome, MeasureSpec
from farm.scale.security import security_for


def run_on_cluster(scheduler: str, inventory: Any, specs: Sequence[MeasureSpec], job: BoardJob, *,
                   job_timeout: float = DEFAULT_JOB_TIMEOUT, worker_wait: float = DEFAULT_WORKER_WAIT,
                   progress: Callable[[str], None] | None = None) -> Iterator[tuple[MeasureSpec, JobOutcome]]:
    """Each of ``specs`` run by ``job`` on the cluster at ``scheduler`` ('local' or an address),
    with its outcome, in order. Raises ClusterConfigError for the inventory's ``cluster:``
    TLS files that are missing, OSError for a scheduler that cannot be reached."""
    security = security_for(inventory.cluster_config, inventory.source)
    boards = list(dict.fromkeys(spec.board for spec in specs))
    session = open_cluster(scheduler, boards, security=security,
                           emulated={d.name for d in inventory.devices if d.is_emulated})
    dispatcher = Dispatcher(session.client, job_timeout=job_timeout, worker_wait=worker_wait, progress=progress,
                            job=job)
    try:
        for spec in specs:
            dispatcher.submit(spec)
        for spec in specs:
            yield spec, dispatcher.outcome(spec)
    finally:
        dispatcher.close()
        session.close()
