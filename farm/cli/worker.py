"""``farm worker``: a Dask worker on a bench host, advertising the boards the inventory places there."""

from __future__ import annotations

import sys

import click

from farm.cli.common import EXIT_FAILED, FarmUsageError, devices_file, err, farm_options, load_inventory, \
    resolve_scheduler


@click.command("worker")
@farm_options
@click.option("--scheduler", "scheduler", metavar="ADDRESS", default=None,
              help="The scheduler to join: tcp://controller:8786 or tls://controller:8786 "
                   "(default: $FARM_SCHEDULER, else the inventory's cluster.scheduler).")
@click.option("--host", "host_name", metavar="NAME", default=None,
              help="This bench host's name in the inventory (default: this machine's host name): "
                   "the devices whose serial.host is NAME are served here, over their local ports.")
@click.option("--boards", "boards", metavar="NAMES", default="",
              help="Also serve these boards (comma-separated device names: emulated or local boards).")
@click.option("--listen", "listen", metavar="HOST", default=None,
              help="Address this worker listens on (default: the interface that reaches the scheduler).")
@click.option("--nthreads", type=int, default=None, help="Threads (default: one per board, at least one).")
@click.option("--name", "name", default=None, help="The worker's name in the cluster.")
@click.option("--connect-timeout", type=float, default=30.0, show_default=True,
              help="Give up when the scheduler does not take this worker within this many seconds.")
@click.pass_context
def worker(ctx: click.Context, scheduler: str | None, host_name: str | None, boards: str, listen: str | None,
           nthreads: int | None, name: str | None, connect_timeout: float) -> None:
    """Serve this host's boards to a farm cluster (Dask distributed) until stopped.

    \b
    Each board is the worker resource board:<name>=1: the scheduler sends a board one
    job at a time, and only to the worker that has it. A lab's cluster uses the TLS
    files of the inventory's cluster: section (tls_ca_file, tls_cert, tls_key): a
    worker without a certificate of the lab's CA is refused.
      farm worker --scheduler tls://controller:8786
      farm worker --scheduler tcp://127.0.0.1:8786 --boards qemu-m3
    """
    from farm.scale.cluster import LOCAL
    from farm.scale.resources import boards_for_host, this_host
    from farm.scale.security import ClusterConfigError, security_for
    from farm.scale.worker import WorkerRefused, serve

    path = devices_file(ctx)
    inventory = load_inventory(path)
    address = resolve_scheduler(scheduler, inventory)
    if address == LOCAL:
        raise FarmUsageError("farm worker needs the scheduler to join: --scheduler tcp://HOST:8786 "
                             "(or $FARM_SCHEDULER, or cluster.scheduler in the inventory)")
    claimed = [b.strip() for b in boards.split(",") if b.strip()]
    unknown = [b for b in claimed if b not in inventory.names]
    if unknown:
        raise FarmUsageError(f"--boards: no device {', '.join(map(repr, unknown))} in {path}; "
                             f"known devices: {', '.join(inventory.names)}")
    host = host_name or this_host()
    served = boards_for_host(inventory.devices, host, claimed)
    try:
        security = security_for(inventory.cluster_config, path)
    except ClusterConfigError as exc:
        raise FarmUsageError(str(exc)) from None

    def started(worker_address: str) -> None:
        err.print(f"worker {worker_address} (host {host}) serving {', '.join(served) or 'no boards (host work only)'} "
                  f"for {address}", soft_wrap=True)

    try:
        serve(address, served, host_name=host, security=security, listen=listen, name=name, nthreads=nthreads,
              connect_timeout=connect_timeout, started=started)
    except WorkerRefused as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        pass
