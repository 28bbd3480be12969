"""Options and helpers shared by the commands that read the results store
(``farm nightly``, ``compare``, ``baseline``, ``report``): ``--db URL``,
``--thresholds FILE``, and run references (``42``, ``latest``, ``baseline``, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from farm.cli.main import FarmUsageError

RUN_REFS = "a run id, 'latest', 'latest-nightly' or 'baseline'"


def db_option(fn: Any) -> Any:
    return click.option("--db", "db_url", metavar="URL", default=None,
                        help="Results database URL (default: $FARM_DB_URL, else sqlite in the state folder), "
                             "e.g. postgresql://farm@db-host:5432/farm.")(fn)


def thresholds_option(fn: Any) -> Any:
    return click.option("--thresholds", "thresholds_file", type=click.Path(path_type=Path), default=None,
                        help="Regression thresholds (default: $FARM_THRESHOLDS, else ./farm-thresholds.toml "
                             "when present, else the built-in defaults).")(fn)


def db_url_for(db_url: str | None) -> str:
    from farm.config.state import default_db_url, state_dir

    return db_url or default_db_url(state_dir())


def open_store(db_url: str | None) -> Any:
    """The results store at ``--db`` (or the default); a bad URL or dead server is a usage error."""
    from farm.store.results import ResultsError, ResultsStore

    try:
        return ResultsStore(db_url_for(db_url))
    except ResultsError as exc:
        raise FarmUsageError(str(exc)) from None


def load_thresholds_for_cli(path: Path | None) -> Any:
    from farm.config.thresholds import ThresholdsError, load_thresholds

    try:
        return load_thresholds(path)
    except ThresholdsError as exc:
        raise FarmUsageError(str(exc)) from None


def resolve_run(store: Any, ref: str) -> Any:
    """The RunRecord that ``ref`` names: an id, ``latest`` (any kind), ``latest-nightly``, or
    ``baseline`` (what the next nightly would be compared with: pinned, else the last passing nightly)."""
    from farm.store.results import ResultsError

    if ref == "latest":
        run = store.latest_run()
        if run is None:
            raise FarmUsageError("no runs in the results database yet")
        return run
    if ref == "latest-nightly":
        run = store.latest_run("nightly")
        if run is None:
            raise FarmUsageError("no nightly runs in the results database yet")
        return run
    if ref == "baseline":
        pinned = store.pinned_baseline()
        if pinned is not None:
            return _get(store, pinned)
        run = store.last_passing_run("nightly")
        if run is None:
            raise FarmUsageError("no baseline: no nightly has passed yet and none is pinned (farm baseline pin RUN)")
        return run
    try:
        run_id = int(ref)
    except ValueError:
        raise FarmUsageError(f"{ref!r} is not a run: expected {RUN_REFS}") from None
    try:
        return store.run(run_id)
    except ResultsError as exc:
        raise FarmUsageError(str(exc)) from None


def _get(store: Any, run_id: int) -> Any:
    from farm.store.results import ResultsError

    try:
        return store.run(run_id)
    except ResultsError:
        raise FarmUsageError(f"the pinned baseline, run {run_id}, is not in the results database "
                             f"(farm baseline unpin)") from None


def run_label(run: Any) -> str:
    """``run 14 (nightly, passed, 2026-11-26 18:40 UTC, commit 4e50bc4)``"""
    when = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
    commit = (run.git_commit or "no commit")[:12] + ("-dirty" if (run.git_commit or "").endswith("-dirty") else "")
    return f"run {run.id} ({run.kind}, {run.status}, {when}, commit {commit})"
