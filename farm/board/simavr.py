"""simavr boards: "flashing" an emulated AVR is (re)starting the farm's runner with the ELF.

The runner (farm.board.simavr_runner) loads the ELF into simavr's model of the chip,
listens on a TCP port for the farm and starts the chip only once the farm has
connected and sent the runner its start byte (:meth:`SimavrBoard.connect`): pyserial
empties its input when it opens a socket, so the chip's boot banner must come after
that -- no byte of output is lost. simavr models the
AVR core cycle by cycle: the harness's Timer1 at clk/1 counts core cycles, so the
counts are **cycles** (``simavr, cycle-accurate AVR core``), and latency is count /
clock, not an estimate.
"""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from farm.board.protocol import Timing
from farm.board.qemu import EmulatorError, stop_process
from farm.board.simavr_runner import ensure_runner
from farm.board.transport import SocketTransport, open_transport


class SimavrError(EmulatorError):
    """The simavr runner could not be started (an emulator error: status ``error``)."""


def avr_cycles_per_inference(timing: Timing, identity: Mapping[str, str]) -> float:
    """Cycles of one model_invoke, entry to return, from the harness's two loop windows.

    The harness times n inferences in one loop and the identical loop with an empty
    model (``null_invoke``: ``null_invoke_cycles`` long, its return included). Timer1
    runs at clk/1 and the harness takes its overflow handler's cycles out of the count
    (board_avr.c), so the difference of the two windows is exactly n x (model - empty
    model) cycles; the empty model's cycles are added back.
    """
    diff = timing.loop_ticks - timing.null_loop_ticks
    added = int(identity.get("null_invoke_cycles", "0"))
    if diff % timing.count == 0:
        return float(diff // timing.count + added)
    return diff / timing.count + added


class SimavrBoard:
    """A running simavr runner with the ELF loaded; ``url`` is its USART0 for pyserial.

    ``report_pin`` (e.g. ``"B7"``, the harness's marker): the runner prints simavr's cycle
    counter at each write of that pin on its stderr (the log) -- for the cross-check test only."""

    def __init__(self, mcu: str, clock_hz: int, elf: Path, state: Path, log_path: Path | None = None,
                 report_pin: str | None = None) -> None:
        self.runner = ensure_runner(state)
        self.elf = elf
        self.log_path = log_path
        self.command = [str(self.runner), "--mcu", mcu, "--freq", str(clock_hz), "--port", "0"]
        if report_pin:
            self.command += ["--report-pin", report_pin]
        self.command.append(str(elf))
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._log)
        self.port = self._read_port()
        self.url = f"socket://127.0.0.1:{self.port}"

    def _read_port(self, timeout: float = 10.0) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = self.process.stdout.read1(64) if hasattr(self.process.stdout, "read1") else b""
            if not chunk:
                break
            line += chunk
        words = line.decode(errors="replace").split()
        if len(words) == 2 and words[0] == "listening" and words[1].isdigit():
            return int(words[1])
        self.stop()
        raise SimavrError(f"the simavr runner did not start ({' '.join(self.command)}): "
                          f"exit code {self.process.returncode}; see {self.log_path}")

    def connect(self) -> SocketTransport:
        """The chip's USART0, opened; the chip starts now (the runner's start byte)."""
        transport = open_transport(self.url)
        transport.write(b"\x00")
        return transport

    def stop(self) -> None:
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> SimavrBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
