"""The ``emulator:simavr`` board driver: an emulated AVR is the farm's simavr runner with the ELF.

The runner's USART0 is a TCP socket (farm.board.simavr); the harness's boot banner
is the board's identity, and its Timer1 ticks are core cycles (simavr's AVR core is
cycle-accurate), turned into cycles per inference by
:func:`farm.board.simavr.avr_cycles_per_inference`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm.board.driver import BoardConnection, board_driver
from farm.board.session import Session
from farm.board.simavr import SimavrBoard, avr_cycles_per_inference
from farm.config.capabilities import count_unit


@board_driver("emulator:simavr")
@contextmanager
def simavr_board(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
    """Start the runner with ``elf``, wait for the harness's READY, yield the connection.

    ``log_dir`` is the state folder's ``logs``: the runner is built into (and cached in)
    that state folder."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with SimavrBoard(device.emulator.machine, device.clock_hz, elf, log_dir.parent,
                     log_path=log_dir / f"simavr-{device.name}.log") as board:
        transport = board.connect()
        try:
            session = Session(transport, timeout=10.0)
            identity = session.wait_ready()
            yield BoardConnection(session, identity, count_unit(device), avr_cycles_per_inference, board.url)
        finally:
            transport.close()
