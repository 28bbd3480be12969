"""Did every board of the night run its jobs: the boards a nightly meant to measure and did not.

A board is missing from a night when its HIL tests asked for measurements and it gave
none (every one skipped: held by another run, quarantined, no worker advertising it),
or when one of its records is ``infra-error`` (its worker died or was killed, a job
timed out: the farm, not the board's firmware, failed to measure). Such a night is
``incomplete``: never PASSED, so never the baseline, and it says which boards are
missing and why. A board whose model does not fit, faults or hangs did run: that is a
result, judged like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farm.store.status import Status


def missing_boards(planned: Iterable[str], records: Iterable[Any],
                   skipped: Mapping[str, str] | None = None) -> dict[str, str]:
    """Board -> why it is missing, for the ``planned`` boards (those whose collected tests
    measure), from the night's ``records`` and the first skip reason seen per board."""
    skipped = skipped or {}
    by_board: dict[str, list[Any]] = {}
    for r in records:
        by_board.setdefault(r.device, []).append(r)
    missing: dict[str, str] = {}
    for board in dict.fromkeys(planned):
        mine = by_board.get(board, [])
        lost = [r for r in mine if str(r.status) == Status.INFRA_ERROR]
        if lost:
            first = lost[0]
            missing[board] = (f"{len(lost)} of its {len(mine)} measurements are infra-error: "
                              f"{first.model}/{first.variant}: {first.message or 'no reason given'}")
        elif not mine:
            missing[board] = f"no measurement ran: {skipped.get(board) or 'every test of the board was skipped'}"
    return missing


def missing_sentence(missing: Mapping[str, str]) -> str:
    """One line per missing board, for the verdict."""
    return "; ".join(f"{board}: {why}" for board, why in missing.items())
