"""A run's budget verdicts: stored with the run by the budget tests, read back by the reports.

Each test of farm/hil/test_budgets.py judges one budget (farm.project.budgets.judge) and
stores its verdict here, in the run's details under ``budgets`` (keyed by the test id,
``my-model-int8-qemu-m3-latency_us``), so the terminal verdict of ``farm nightly``, the HTML
report and ``farm report`` later show exactly what the tests decided, and judge nothing
themselves. A verdict is a plain dict (BudgetVerdict.to_dict): ``model, variant, device,
budget, limit, limit_text, measured, measured_text, passed, judged, sentence, test``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from farm.store.records import RunRecord
from farm.store.results import ResultsStore

#: where a run's details keep its budget verdicts
BUDGETS_KEY = "budgets"


def store_verdict(store: ResultsStore, run_id: int, verdict: Mapping[str, Any]) -> None:
    """Add (or replace: the same test again) one verdict to the run's stored verdicts."""
    run = store.run(run_id)
    verdicts = dict((run.details or {}).get(BUDGETS_KEY) or {})
    verdicts[str(verdict["test"])] = dict(verdict)
    store.update_run_details(run_id, **{BUDGETS_KEY: verdicts})


def stored_verdicts(run: RunRecord | None) -> list[dict[str, Any]]:
    """The run's budget verdicts, in the order the tests ran (none: the run judged no budget)."""
    if run is None:
        return []
    return list(((run.details or {}).get(BUDGETS_KEY) or {}).values())


def broken(verdicts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The verdicts that failed: over (or under) the limit, or not judged (which fails too)."""
    return [v for v in verdicts if not v.get("passed")]


def budgets_summary(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """``2 of 24 budgets broken (1 could not be judged)`` / ``all 24 budgets held``."""
    n = len(verdicts)
    if not n:
        return "no budget judged"
    bad = broken(verdicts)
    if not bad:
        return f"all {n} budgets held" if n != 1 else "the 1 budget held"
    unjudged = [v for v in bad if not v.get("judged")]
    note = f" ({len(unjudged)} could not be judged)" if unjudged else ""
    return f"{len(bad)} of {n} budget{'s' if n != 1 else ''} broken{note}"

