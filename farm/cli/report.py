"""``farm report``: the self-contained HTML report of a run."""

from __future__ import annotations

from pathlib import Path

import click

from farm.cli.common import db_url, err, farm_options, load_thresholds_for_cli, open_store, resolve_run, \
    thresholds_option


@click.command("report")
@farm_options
@click.option("--run", "run_ref", default="latest-nightly", show_default=True,
              help="Run id, 'latest', 'latest-nightly' or 'baseline'.")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write.")
@click.option("--last", "last", default=20, show_default=True, type=click.IntRange(min=1),
              help="Nightlies in the trend plots.")
@thresholds_option
@click.pass_context
def report(ctx: click.Context, run_ref: str, output: Path, last: int, thresholds_file: Path | None) -> None:
    """Write a self-contained HTML report of a run (plots inline, no external files).

    \b
    The verdict against the baseline with every change; the triad per model x
    variant x board (model size, latency, accuracy); int8 vs float32 speedup per
    board; the portability matrix; energy per inference and its source; trends of
    the last N nightlies per metric with the regressions marked; the provenance of
    each result (hashes, compiler and flags, counter, timed windows).
    """
    from farm.judge.regression import compare_with_baseline, stored_comparison
    from farm.report.html import write_report

    thresholds = load_thresholds_for_cli(thresholds_file)
    store = open_store(db_url(ctx))
    if run_ref == "latest-nightly" and store.latest_run("nightly") is None:
        run_ref = "latest"  # no nightly yet: report the latest run of any kind
    run = resolve_run(store, run_ref)
    # a run judged when it ran carries its comparison; any other is judged here, the report only renders
    comparison = None if stored_comparison(store, run) else compare_with_baseline(store, run, thresholds)
    write_report(store, run.id, output, last=last, thresholds=thresholds, comparison=comparison)
    err.print(f"report of run {run.id} ({run.kind}, {run.status}): {output}")
