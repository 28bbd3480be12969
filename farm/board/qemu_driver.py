"""The ``emulator:qemu`` board driver: an emulated device is QEMU started with the ELF.

QEMU's UART is a TCP socket (farm.board.qemu); the harness's boot banner is the
board's identity, and its timer ticks become instructions (QEMU -icount).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm.board.driver import BoardConnection, board_driver
from farm.board.qemu import EmulatorSpec, QemuBoard
from farm.board.session import Session
from farm.board.transport import open_transport
from farm.config.capabilities import count_unit


@board_driver("emulator:qemu")
@contextmanager
def qemu_board(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
    """Start QEMU with ``elf``, wait for the harness's READY, yield the connection."""
    spec = EmulatorSpec(device.emulator.machine, device.emulator.icount_shift)
    log_dir.mkdir(parents=True, exist_ok=True)
    with QemuBoard(spec, elf, log_path=log_dir / f"qemu-{device.name}.log") as qemu:
        transport = open_transport(qemu.url)
        try:
            session = Session(transport, timeout=10.0)
            identity = session.wait_ready()
            yield BoardConnection(session, identity, count_unit(device), spec.instructions_per_inference, qemu.url)
        finally:
            transport.close()
