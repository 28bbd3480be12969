"""The farm's simavr runner: built from its C source with the host compiler, cached.

simavr has no UART input on its command line, so the farm ships a small C program
(``farm/firmware/tools/simavr_runner/runner.c``) linked with libsimavr (Debian
``libsimavr-dev``) that runs an ELF with USART0 on a TCP socket. It is compiled on
first use into the state folder, ``<state>/tools/simavr-runner-<hash>/``, keyed by
the hash of its source (so an installed wheel builds it the same way, and an edited
runner is rebuilt), under a lock: several boards may start at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from farm.board.qemu import EmulatorError
from farm.build.locks import locked

RUNNER_SOURCE = Path(__file__).resolve().parents[1] / "firmware" / "tools" / "simavr_runner" / "runner.c"
SIMAVR_INCLUDE = Path("/usr/include/simavr")
HOST_CC = "gcc"


class RunnerBuildError(EmulatorError):
    """The runner could not be built (no host compiler, no libsimavr, a compile error)."""


def runner_hash() -> str:
    return hashlib.sha256(RUNNER_SOURCE.read_bytes()).hexdigest()[:16]


def ensure_runner(state: Path) -> Path:
    """The path of the built runner for this source, building it when missing."""
    folder = state / "tools" / f"simavr-runner-{runner_hash()}"
    binary = folder / "simavr-runner"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    if shutil.which(HOST_CC) is None:
        raise RunnerBuildError(f"{HOST_CC} not found on PATH: the simavr runner is built with the host "
                               "compiler (Debian gcc, libc6-dev; make setup)")
    if not (SIMAVR_INCLUDE / "sim_avr.h").is_file():
        raise RunnerBuildError(f"{SIMAVR_INCLUDE / 'sim_avr.h'} not found: the simavr runner links "
                               "libsimavr (Debian libsimavr-dev; make setup)")
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder.parent / f".{folder.name}.lock"):
        if binary.is_file():
            return binary
        partial = folder / f"simavr-runner.tmp-{os.getpid()}"
        command = [HOST_CC, "-O2", "-Wall", "-Wextra", f"-I{SIMAVR_INCLUDE}", "-o", str(partial),
                   str(RUNNER_SOURCE), "-lsimavr"]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RunnerBuildError(f"building the simavr runner failed ({' '.join(command)}):\n"
                                   + (proc.stdout + proc.stderr).strip())
        partial.rename(binary)
    return binary
