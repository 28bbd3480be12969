"""``farm results``: the stored results of a run."""

from __future__ import annotations

import json

import click

from farm.cli.common import FarmUsageError, db_url, farm_options, open_store, out


@click.command("results")
@farm_options
@click.option("--run", "run_ref", default="latest", show_default=True, help="Run id, or 'latest'.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_context
def results(ctx: click.Context, run_ref: str, as_json: bool) -> None:
    """Show the stored results of a run."""
    from farm.report.console import print_results, result_json

    store = open_store(db_url(ctx))
    if run_ref == "latest":
        latest = store.latest_run()
        if latest is None:
            raise FarmUsageError("no runs in the results database yet")
        run_id = latest.id
    else:
        try:
            run_id = int(run_ref)
        except ValueError:
            raise FarmUsageError(f"--run takes a run id or 'latest', not {run_ref!r}") from None
    records = store.results_for_run(run_id)
    if as_json:
        for record in records:
            click.echo(json.dumps(result_json(record)))
    else:
        print_results(out, records, title=f"run {run_id}", run=store.run(run_id))
