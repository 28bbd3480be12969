"""The farm's vocabulary of outcomes and units, one place for every stage.

Each is a :class:`enum.StrEnum`: a member *is* its string (``Status.OK == "ok"``), so
records, the database and JSON keep plain strings, while code names the member.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The outcome of one (device, model, variant) job."""

    OK = "ok"  # measured; outputs compared with the host reference
    FAILED = "failed"  # ran, but its output differs from the reference (portability matrix)
    FAULTED = "faulted"  # the board reported a fault (decoded in the message)
    HUNG = "hung"  # the board stopped answering
    DOES_NOT_FIT = "does-not-fit"  # flash or RAM too small (the message names the bytes)
    NOT_PORTABLE = "not-portable"  # the build uses what the core lacks, or breaks a variant's rule
    ERROR = "error"  # the farm could not build or run it (code generation, build, emulator)
    INFRA_ERROR = "infra-error"  # the farm could not reach or use the board: no verdict on the firmware

    @property
    def is_verdict_on_firmware(self) -> bool:
        return self is not Status.INFRA_ERROR


class CellStatus(StrEnum):
    """A cell of the portability matrix (``farm portability``)."""

    RUNS = "runs"  # static checks passed and one inference matched the reference on the board
    PORTABLE = "portable"  # static checks passed (--static-only)
    DOES_NOT_FIT = "does-not-fit"
    NOT_PORTABLE = "not-portable"
    FAULTED = "faulted"
    HUNG = "hung"
    FAILED = "failed"  # ran, output differs from the reference
    ERROR = "error"
    INFRA_ERROR = "infra-error"


class RunStatus(StrEnum):
    """A run (``farm run``, ``farm nightly``, a pytest session)."""

    RUNNING = "running"  # its process is alive (or has not been checked)
    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"  # a nightly in which a board's jobs did not run (farm.judge.coverage)
    FINISHED = "finished"  # completed without a verdict
    ERROR = "error"  # the run itself broke
    INTERRUPTED = "interrupted"  # stopped by the user
    ABORTED = "aborted"  # its process is gone and it never finished (killed, crashed)


class Unit(StrEnum):
    """What a count counts."""

    CYCLES = "cycles"  # a cycle counter (DWT->CYCCNT, SysTick at core clock, simavr's cycle-accurate core)
    INSTRUCTIONS = "instructions"  # an emulator that does not model time (QEMU -icount)

    @property
    def latency_is_estimate(self) -> bool:
        """Latency = count / clock is an estimate unless the count is cycles."""
        return self is not Unit.CYCLES
