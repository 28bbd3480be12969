"""QEMU boards: "flashing" an emulated board is (re)starting QEMU with the ELF.

The UART is a TCP server with ``wait=on``: QEMU does not start the guest until
the farm has connected, so no byte of output is lost (docs/ARCHITECTURE.md). ``-icount
shift=N`` makes the guest clock follow executed instructions, so the MPS2 dual
timer's / minstret's counts are deterministic instruction counts rather than
host-time noise.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from farm.board.protocol import Timing
from farm.config.capabilities import QEMU_BINARIES


#: counters QEMU reads from the virtual clock (ns) under -icount
_VIRTUAL_CLOCK_COUNTERS = frozenset({"minstret", "mcycle"})


class EmulatorError(RuntimeError):
    """QEMU could not be started."""


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop an emulator process: terminate, and kill it when it has not exited 5 s later."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class EmulatorSpec:
    machine: str
    icount_shift: int = 0

    def ticks_to_instructions(self, ticks: float, timer_hz: int, timer: str = "systick") -> float:
        """Under -icount shift=N one instruction takes 2^N ns of guest time.

        ``timer`` is the counter the harness names in its identity: a timer at
        ``timer_hz`` (the MPS2 boards' dual timer, ``dualtimer``, a SysTick in older
        firmware) ticks every 1e9/timer_hz ns; QEMU derives the RISC-V counters
        (minstret, mcycle) from the virtual clock in ns, so they advance 2^N per
        instruction (with shift=0 they are the instruction count itself).
        """
        return float(ticks / self.ticks_per_instruction(timer, timer_hz))

    def ticks_per_instruction(self, timer: str, timer_hz: int) -> Fraction:
        if timer in _VIRTUAL_CLOCK_COUNTERS:
            return Fraction(2**self.icount_shift)
        return Fraction(2**self.icount_shift * timer_hz, 10**9)

    def instructions_per_inference(self, timing: Timing, identity: Mapping[str, str]) -> float:
        """The instruction count of one inference, from the harness's two loop windows.

        The harness times n inferences in one loop and the identical loop with an
        empty model (``null_invoke``, ``null_invoke_instructions`` long). Their
        difference is n x (model - empty model) instructions, read through a timer
        of r ticks per instruction with at most one tick of quantization per
        window: (loop - null_loop) / (r n) is within 2 / (r n) of the exact count,
        so when r n > 4 rounding gives the exact integer. The harness's timer takes no
        interrupt (board_mps2.c), so no handler instruction falls into a window. The empty model's own
        instructions are added back: the count is model_invoke's, entry to return.
        """
        timer = identity.get("timer", "systick")
        r = self.ticks_per_instruction(timer, int(identity["timer_hz"]))
        diff = Fraction(timing.loop_ticks - timing.null_loop_ticks) / (r * timing.count)
        added = int(identity.get("null_invoke_instructions", "0"))
        if r * timing.count > 4:
            return float(round(diff) + added)
        return float(diff + added)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QemuBoard:
    """A running QEMU with the ELF loaded; ``url`` is its UART for pyserial."""

    def __init__(self, spec: EmulatorSpec, elf: Path, log_path: Path | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        binary = QEMU_BINARIES.get(spec.machine)
        if binary is None:
            raise EmulatorError(f"no QEMU binary known for machine {spec.machine!r} (known: {sorted(QEMU_BINARIES)})")
        if shutil.which(binary) is None:
            raise EmulatorError(f"{binary} not found on PATH (Debian package qemu-system-arm / qemu-system-misc)")
        self.spec = spec
        self.elf = elf
        self.port = _free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.command = [
            binary,
            "-M", spec.machine,
            "-display", "none",
            "-monitor", "none",
            "-nodefaults",
            "-icount", f"shift={spec.icount_shift}",
            # nodelay: no Nagle on QEMU's side of the UART socket; without it every reply
            # of a few bytes waits for the host's delayed ACK (~40 ms per request)
            "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on",
            "-kernel", str(elf),
            *extra_args,  # e.g. an execution trace (farm.board.traces)
        ]
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmulatorError(f"QEMU exited with code {self.process.returncode}: {' '.join(self.command)}")
            # QEMU logs "waiting for connection" on stderr; probing the port would
            # consume its one wait=on connection, so only watch the socket table.
            if _port_listening(self.port):
                return
            time.sleep(0.02)
        raise EmulatorError(f"QEMU did not open its UART on port {self.port} within {timeout} s")

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> QemuBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_listening(port: int) -> bool:
    """True when a socket on 127.0.0.1:port is in LISTEN state (/proc/net/tcp)."""
    needle = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            return any(needle in line and line.split()[3] == "0A" for line in table)
    except OSError:
        return True  # cannot tell: let the connect retry loop handle it

