"""Bring a device up with an ELF, under its lease, and hand back a protocol session.

A registry keyed by how the device is reached (``emulator:qemu``, ``emulator:simavr``, local ``serial``,
``ssh`` to a bench host): each driver lives in its own module, registers itself
with :func:`farm.board.driver.board_driver`, and yields a
:class:`~farm.board.driver.BoardConnection`: the session, the identity the harness
announced at boot, and how to turn the board's timer ticks into the device's
count unit. This module imports the driver modules so that they register.

:func:`open_board` is the one way onto a board, for every command: it takes the
device's lease first (farm.board.leases), so one run uses a device at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

# the drivers register on import (they import farm.board.driver only, never this module)
from farm.board import qemu_driver as _qemu_driver  # noqa: F401  "emulator:qemu"
from farm.board import serial as _serial_driver  # noqa: F401  "serial"
from farm.board import simavr_driver as _simavr_driver  # noqa: F401  "emulator:simavr"
from farm.board.driver import BoardConnection, BoardDriver, registered_driver, registered_kinds
from farm.board.leases import LeasePolicy, hold
from farm.board.ssh import driver as _ssh_driver  # noqa: F401  "ssh"


def driver_kind(device: Any) -> str:
    """How ``device`` is reached: ``emulator:<kind>``, ``ssh`` (a bench host's port) or ``serial``."""
    if device.emulator is not None:
        return f"emulator:{device.emulator.kind}"
    if getattr(device.serial, "host", None):
        return "ssh"
    return "serial"


def open_board(device: Any, elf: Path, log_dir: Path, *,
               lease: LeasePolicy | None = None) -> AbstractContextManager[BoardConnection]:
    """``device`` running ``elf``, for the ``with`` block, under the device's lease.

    The lease (``lease``, else :meth:`LeasePolicy.default`) is taken before the board is
    touched and given back after -- unless this process holds it already, which then
    keeps it. Raises DeviceBusy (still busy after the policy's wait) or DeviceQuarantined
    on entering the block, NotImplementedError at once for a device no driver reaches.
    """
    kind = driver_kind(device)
    driver = registered_driver(kind)
    if driver is None:
        raise NotImplementedError(
            f"device {device.name}: no board driver for {kind!r} in this version "
            f"(available: {', '.join(registered_kinds())})"
        )
    return _leased_board(driver, device, elf, log_dir, lease or LeasePolicy.default())


@contextmanager
def _leased_board(driver: BoardDriver, device: Any, elf: Path, log_dir: Path,
                  lease: LeasePolicy) -> Iterator[BoardConnection]:
    with hold(device.name, lease), driver(device, elf, log_dir) as board:
        yield board


__all__ = ["BoardConnection", "driver_kind", "open_board"]
