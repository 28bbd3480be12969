"""Infrastructure failures: the farm could not use a board, through no fault of the firmware.

A bench host that cannot be reached, a host key that does not match, an SSH
connection that drops mid-run, a board that does not identify after retries:
these are recorded with the status ``infra-error`` (never ``faulted`` or
``hung``, which are verdicts on the firmware), and the run goes on with the
other boards. A board that fails to identify is also quarantined (farm.board.leases).
"""

from __future__ import annotations

from farm.store.status import Status

#: the result status of an infrastructure failure (an alias of Status.INFRA_ERROR)
INFRA_STATUS = Status.INFRA_ERROR


class InfraError(RuntimeError):
    """The farm's infrastructure failed; not a verdict on the model or firmware."""

    #: whether the board itself should be quarantined (it is the board that failed)
    quarantine = False


class BoardUnavailable(InfraError):
    """The board did not identify itself after retries: it is quarantined."""

    quarantine = True


class BenchHostError(InfraError):
    """The bench host could not be reached, refused us, or its agent failed."""


class HostKeyError(BenchHostError):
    """The bench host's key is unknown or changed: refused before sending anything."""


class ConnectionLost(BenchHostError):
    """The SSH connection to the bench host dropped in the middle of a run."""


class FlashError(InfraError):
    """Loading the firmware onto the board failed."""
