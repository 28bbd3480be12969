"""QEMU's execution traces: run an ELF on a fresh emulated board with QEMU logging on.

What a trace is read for lives with its reader (``farm profile``: cycles per
function; ``farm portability``: soft-float calls per inference). This module
boots the board, feeds it a sample, runs the inferences and hands back once the
log is complete.
"""

from __future__ import annotations

from pathlib import Path

from farm.board.qemu import EmulatorSpec, QemuBoard
from farm.board.session import Session
from farm.board.transport import open_transport


def run_traced(spec: EmulatorSpec, elf: Path, sample: bytes, inferences: int, qemu_log_args: tuple[str, ...],
               timeout: float) -> None:
    """Boot `elf` in a fresh emulator with QEMU logging on (``-d ... -D file`` in
    `qemu_log_args`), load `sample` and run `inferences` inferences; the log is
    complete when this returns (the emulator has exited)."""
    with QemuBoard(spec, elf, extra_args=qemu_log_args) as board:
        transport = open_transport(board.url)
        try:
            session = Session(transport, timeout=timeout)
            session.wait_ready()
            session.load_input(sample)
            session.run(inferences, timeout=timeout)
        finally:
            transport.close()
