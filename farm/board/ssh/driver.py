"""The ``ssh`` board driver: a board on a bench host's serial port, reached over SSH.

build (controller) -> copy the ELF over SFTP -> flash it on the host with the
agent (the same flashers as for local boards) -> bridge the host's serial port
back over the SSH connection -> identify -> the protocol session. Everything
that goes wrong on the way (host down, host key refused, connection dropped
mid-run, agent or port missing) is an :class:`~farm.board.infra.InfraError` naming the
host, so the run records ``infra-error`` and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm.board.driver import BoardConnection, board_driver
from farm.board.flashing import plan_for
from farm.board.identify import identify_board
from farm.board.infra import BenchHostError, ConnectionLost, InfraError
from farm.board.session import DeviceError


@board_driver("ssh")
@contextmanager
def ssh_board(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
    """Copy the ELF to the bench host, flash it there, bridge the port back, identify the board."""
    from farm.board.ssh.bench import BenchHost  # paramiko: loaded only when a bench host is used

    name, host = device.serial.host, device.bench_host
    if host is None:
        raise BenchHostError(f"device {device.name}: bench host {name!r} is not declared in the inventory")
    plan = plan_for(device)
    with BenchHost(name, host) as bench:
        image = bench.put_image(elf, plan)
        bench.flash(plan, image)
        try:
            transport = bench.open_bridge(plan)
            try:
                session, identity = identify_board(device, transport)
                yield BoardConnection(session, identity, plan.unit, plan.convert, transport.url)
            except DeviceError as exc:
                if transport.lost:  # not the board's fault: the SSH connection went away
                    raise ConnectionLost(f"{device.name}: {exc}") from exc
                raise
            finally:
                transport.close()
        finally:
            try:
                bench.stop(plan)
            except InfraError:
                pass  # the connection is gone; the next flash restarts the board anyway
