"""Identify a freshly flashed board over the framed protocol, with retries.

Shared by the drivers of real boards (``serial`` and ``ssh``): a board that never
answers raises :class:`~farm.board.infra.BoardUnavailable`, an infrastructure
failure after which the board is quarantined (farm.board.leases), not a verdict on
the firmware.
"""

from __future__ import annotations

from typing import Any

from farm.board.infra import BoardUnavailable
from farm.board.session import DeviceHung, DeviceRefused, Session
from farm.board.transport import Transport

IDENTIFY_ATTEMPTS = 3
IDENTIFY_TIMEOUT = 3.0
#: how long to listen for the boot banner (READY) before asking IDENTIFY
READY_WAIT = 1.0


def identify_board(device: Any, transport: Transport, *, attempts: int | None = None,
                   timeout: float | None = None) -> tuple[Session, dict[str, str]]:
    """The board's identity: its boot banner (READY) if it boots now, else the answer to
    IDENTIFY, asked ``attempts`` times; raise BoardUnavailable if it never answers.

    Listening first matters: a request sent while the board is still booting can sit
    unread (QEMU's UART ignores its pty until the guest enables the receiver, and only
    looks again a second later). A board that booted before the port was open (its
    READY lost) answers IDENTIFY. Line noise is skipped by the decoder. A lost
    connection is not retried (the caller reports it).
    """
    attempts = attempts or IDENTIFY_ATTEMPTS
    session = Session(transport, timeout=timeout or IDENTIFY_TIMEOUT)
    try:
        return session, session.wait_ready(timeout=READY_WAIT)
    except DeviceHung:
        if getattr(transport, "lost", False):
            raise
    problems = []
    for _ in range(attempts):
        try:
            return session, session.identify()
        except (DeviceHung, DeviceRefused) as exc:
            if getattr(transport, "lost", False):
                raise
            problems.append(str(exc))
    raise BoardUnavailable(
        f"{device.name} did not identify on {transport.url} after {attempts} attempts "
        f"({problems[-1]}); the board is quarantined"
    )
