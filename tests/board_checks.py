"""Checks shared by the harness tests of the emulated boards (tests/e2e/test_harness*.py)."""

from __future__ import annotations

import time
from typing import Any

import psutil


def assert_sleeps_waiting_and_answers(board: Any, session: Any) -> None:
    """Between requests the harness waits in WFI on the UART's RX interrupt, not in a busy loop
    (a polling guest kept QEMU at a whole host core, which the other boards of a parallel night
    need); woken by one byte and by whole frames, it still answers and measures."""
    qemu = psutil.Process(board.process.pid)
    before = sum(qemu.cpu_times()[:2])
    start = time.monotonic()
    time.sleep(2.0)
    busy = (sum(qemu.cpu_times()[:2]) - before) / (time.monotonic() - start)
    assert busy < 0.25, f"QEMU used {busy:.0%} of a core while the board waited for a request"
    for size in (1, 100, session.max_payload - 16):
        payload = bytes(i % 251 for i in range(size))
        assert session.ping(payload) == payload
    session.load_input(bytes(range(10, 18)))
    session.run(2)
    assert session.read_timing().count == 2
