"""The ``serial`` board driver: a board on one of the controller's own serial ports.

Flash it with the flasher its inventory entry names (farm.board.flashing), open its
port with pyserial (``/dev/serial/by-id/...``, or the pty of an emulated board
exposed as a serial device), release it, and identify it over the framed
protocol (farm.board.identify). A board that does not identify after retries raises
:class:`~farm.board.infra.BoardUnavailable`: an infrastructure failure, and the board
is quarantined (farm.board.leases), not a verdict on the firmware.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm.board.driver import BoardConnection, board_driver
from farm.board.flashing import LocalFlasher, plan_for
from farm.board.identify import identify_board
from farm.board.infra import BoardUnavailable
from farm.board.transport import open_transport


@board_driver("serial")
@contextmanager
def serial_board(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
    """Flash the board on a local port, open the port, release and identify the board."""
    plan = plan_for(device)
    flasher = LocalFlasher(plan)
    flasher.load(elf)
    try:
        try:
            transport = open_transport(plan.port, plan.baud, connect_timeout=5.0)
        except OSError as exc:  # pyserial's SerialException included
            raise BoardUnavailable(f"{device.name}: cannot open serial port {plan.port}: {exc}") from None
        try:
            flasher.release()
            session, identity = identify_board(device, transport)
            yield BoardConnection(session, identity, plan.unit, plan.convert, plan.port)
        finally:
            transport.close()
    finally:
        flasher.stop()
