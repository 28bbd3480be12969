"""Bring a device up with an ELF and hand back a protocol session.

A registry keyed by how the device is reached (emulator kind today; local serial
and SSH bench hosts plug in the same way). Each driver yields a
:class:`BoardConnection`: the session, the identity the harness announced at
boot, and how to turn the board's timer ticks into the device's count unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.board.qemu import EmulatorSpec, QemuBoard
from farm.measure.timing import CountConverter
from farm.board.session import Session
from farm.board.transport import open_transport


@dataclass
class BoardConnection:
    session: Session
    identity: dict[str, str]
    unit: str
    convert: CountConverter
    transport_url: str


BoardDriver = Callable[[Any, Path, Path], AbstractContextManager[BoardConnection]]
_DRIVERS: dict[str, BoardDriver] = {}


def board_driver(kind: str) -> Callable[[BoardDriver], BoardDriver]:
    def register(fn: BoardDriver) -> BoardDriver:
        _DRIVERS[kind] = fn
        return fn

    return register


def driver_kind(device: Any) -> str:
    if device.emulator is not None:
        return f"emulator:{device.emulator.kind}"
    if getattr(device.serial, "host", None):
        return "ssh"
    return "serial"


def open_board(device: Any, elf: Path, log_dir: Path) -> AbstractContextManager[BoardConnection]:
    kind = driver_kind(device)
    try:
        driver = _DRIVERS[kind]
    except KeyError:
        raise NotImplementedError(
            f"device {device.name}: no board driver for {kind!r} in this version "
            f"(available: {', '.join(sorted(_DRIVERS))})"
        ) from None
    return driver(device, elf, log_dir)


@board_driver("emulator:qemu")
@contextmanager
def _qemu(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
    spec = EmulatorSpec(device.emulator.machine, device.emulator.icount_shift)
    log_dir.mkdir(parents=True, exist_ok=True)
    with QemuBoard(spec, elf, log_path=log_dir / f"qemu-{device.name}.log") as qemu:
        transport = open_transport(qemu.url)
        try:
            session = Session(transport, timeout=10.0)
            identity = session.wait_ready()
            convert = spec.instructions_per_inference
            yield BoardConnection(session, identity, "instructions", convert, qemu.url)
        finally:
            transport.close()


# Drivers for real boards live in their own modules and register on import.
from farm.board import serial as _serial_board  # noqa: E402,F401  "serial"
from farm.board.ssh import driver as _ssh_board  # noqa: E402,F401  "ssh"
