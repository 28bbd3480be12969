"""``farm baseline``: which run the nightly is compared with — the last passing nightly, or a pinned one."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from farm.cli.common import FarmUsageError, db_url, farm_options, open_store, out, resolve_run
from farm.report.labels import run_label
from farm.store.status import RunStatus


@click.group("baseline")
@farm_options
def baseline() -> None:
    """Show, pin or unpin the baseline of the nightly.

    \b
    The baseline is the run each nightly is compared with: the pinned run when
    one is pinned, else the last nightly that passed. Pin a run to accept a
    change on purpose (a new model, a slower but correct kernel), or to hold the
    comparison to a known-good night; unpin to go back to the last passing one.
    """


@baseline.command("show")
@farm_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """The run the next nightly will be compared with, and why."""
    store = open_store(db_url(ctx))
    pinned = store.pinned_baseline()
    last = store.last_passing_run("nightly")
    current = resolve_run(store, "baseline") if (pinned is not None or last is not None) else None
    if as_json:
        click.echo(json.dumps({"baseline": current.to_dict() if current else None,
                               "pinned": pinned, "last_passing_nightly": last.id if last else None}, indent=2))
        return
    if current is None:
        out.print("no baseline yet: no nightly has passed and none is pinned")
        return
    how = "pinned (farm baseline unpin to use the last passing nightly)" if pinned is not None \
        else "the last passing nightly"
    out.print(f"baseline: {escape(run_label(current))} — {how}")
    results = store.results_for_run(current.id)
    out.print(f"  {len(results)} results: " + ", ".join(sorted({f'{r.device}' for r in results})) if results
              else "  no results")
    if pinned is not None and last is not None and last.id != pinned:
        out.print(f"  last passing nightly: {escape(run_label(last))}")


@baseline.command("pin")
@farm_options
@click.argument("run_ref", metavar="RUN")
@click.pass_context
def pin(ctx: click.Context, run_ref: str) -> None:
    """Pin RUN (an id, or 'latest' / 'latest-nightly') as the baseline of every later nightly."""
    store = open_store(db_url(ctx))
    if run_ref == "baseline":
        raise FarmUsageError("pin takes a run id, 'latest' or 'latest-nightly'")
    run = resolve_run(store, run_ref)
    if run.status in (RunStatus.RUNNING, RunStatus.ABORTED):
        raise FarmUsageError(f"run {run.id} has not finished (status {run.status}): pin a finished run")
    store.pin_baseline(run.id)
    out.print(f"pinned {escape(run_label(run))} as the baseline")
    if not store.results_for_run(run.id):
        out.print(f"[yellow]warning:[/] run {run.id} has no results: every result of the next nightly will be new")


@baseline.command("unpin")
@farm_options
@click.pass_context
def unpin(ctx: click.Context) -> None:
    """Forget the pinned run: the baseline is the last passing nightly again."""
    store = open_store(db_url(ctx))
    was = store.unpin_baseline()
    last = store.last_passing_run("nightly")
    out.print((f"unpinned run {was}; " if was is not None else "no run was pinned; ")
              + (f"the baseline is the last passing nightly, {escape(run_label(last))}" if last
                 else "no nightly has passed yet"))
