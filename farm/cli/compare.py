"""``farm compare A B``: what changed between two runs, judged by the regression thresholds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from farm.cli.common import EXIT_FAILED, EXIT_OK, db_url, farm_options, load_thresholds_for_cli, open_store, out, \
    resolve_run, thresholds_option


@click.command("compare")
@farm_options
@click.argument("before", default="baseline", metavar="[A]")
@click.argument("after", default="latest", metavar="[B]")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
@click.option("--all", "show_noise", is_flag=True, help="Also list changes within a real board's noise band.")
@thresholds_option
@click.pass_context
def compare(ctx: click.Context, before: str, after: str, as_json: bool, show_noise: bool,
            thresholds_file: Path | None) -> None:
    """Show what changed from run A (before) to run B (after), metric by metric.

    \b
    A and B are run ids, 'latest', 'latest-nightly' or 'baseline' (the pinned
    run, else the last passing nightly); default: baseline -> latest. Every change
    of every (board, model, variant) is listed with before -> after and the change
    in %; the thresholds (farm-thresholds.toml) decide which are regressions.
    Exit code 1 when B regressed against A.
    """
    from farm.judge.regression import compare_runs
    from farm.report.console import comparison_summary, print_comparison

    thresholds = load_thresholds_for_cli(thresholds_file)
    store = open_store(db_url(ctx))
    run_a = resolve_run(store, before)
    run_b = resolve_run(store, after)
    reason = "given" if before != "baseline" else ("pinned" if store.pinned_baseline() == run_a.id
                                                   else "last passing nightly")
    comparison = compare_runs(store, run_a, run_b, thresholds, reason)
    if as_json:
        click.echo(json.dumps({**comparison.to_json(), "thresholds": thresholds.source}, indent=2))
    else:
        print_comparison(out, comparison, show_noise=show_noise)
        out.print(f"run {run_b.id}: {comparison_summary(comparison)}")
    sys.exit(EXIT_FAILED if comparison.regressions else EXIT_OK)

