"""``farm nightly``: the HIL suite on every device, stored under one nightly run, judged against
the baseline."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from farm.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, db_url, devices_file, err, farm_options, \
    lease_options, load_inventory, load_thresholds_for_cli, open_store, out, project_of, resolve_scheduler, \
    scheduler_option, thresholds_option


@click.command("nightly")
@farm_options
@click.option("--junit", "junit", type=click.Path(path_type=Path),
              help="Also write JUnit XML here (the HIL tests, and a farm.judge.regression suite).")
@click.option("-k", "keyword", help="Only run HIL tests matching this pytest -k expression.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run's results as JSON lines at the end, then one line with the comparison.")
@thresholds_option
@click.option("--report", "report_file", type=click.Path(path_type=Path),
              help="Also write the HTML report of this run here (like farm report --output).")
@click.option("--progress/--no-progress", "live", default=None,
              help="Live progress display (default: when stdout is a terminal; else one log line per result).")
@lease_options
@scheduler_option
@click.pass_context
def nightly(ctx: click.Context, junit: Path | None, keyword: str | None, as_json: bool,
            thresholds_file: Path | None, report_file: Path | None, live: bool | None,
            lease_wait: float, skip_busy: bool, scheduler: str | None) -> None:
    """Run the HIL suite (farm/hil, installed with tinyfarm) on every device of the inventory and judge it against the baseline.

    \b
    Results go to the results database under one nightly run (id, time, git commit).
    The run is then compared with its baseline — the pinned run (farm baseline pin),
    else the last nightly that passed — metric by metric, by the thresholds of
    farm-thresholds.toml. Prints the triad (size, latency, accuracy per model,
    variant and board), what changed, and a verdict. Exit code 1 when a HIL test
    failed or something regressed (each regression is named: board, model,
    variant, metric, before -> after, change).

    \b
    The boards run at once on a Dask cluster (farm/scale): by default a local one
    started for the night (one worker process per core, $FARM_LOCAL_WORKERS to
    change it); --scheduler tcp://HOST:8786 (or $FARM_SCHEDULER) sends
    the jobs to a lab's, whose `farm worker`s serve their hosts' boards;
    --scheduler in-process measures one board after the other in this process.
    """
    import pytest

    from farm.cli.nightly_progress import NightlyProgress
    from farm.judge.regression import add_to_junit, judge
    from farm.judge.budgets import stored_verdicts
    from farm.judge.coverage import missing_boards
    from farm.report.console import SIZE_TABLES_KEY, print_budgets, print_comparison, print_size_tables, \
        print_triad, print_verdict, result_json, time_use_text
    from farm.config.state import state_dir
    from farm.pytest_plugin.suite import HIL_SUITE
    from farm.store.vcs import git_commit

    inventory_file = devices_file(ctx)
    inventory = load_inventory(inventory_file)  # fail fast, with file/line/field
    cluster = resolve_scheduler(scheduler, inventory)
    thresholds = load_thresholds_for_cli(thresholds_file)
    state = state_dir()
    url = db_url(ctx)
    store = open_store(url)
    run_id = store.start_run("nightly", git_commit())
    hil = HIL_SUITE
    os.environ["FARM_HOME"] = str(state)  # the suite's measurements share this state folder
    args = [str(hil), "-p", "no:cacheprovider", "-q", "-ra", f"--farm-devices={inventory_file.resolve()}",
            f"--farm-run-id={run_id}", f"--farm-db={url}", "--rootdir", str(hil), "--confcutdir", str(hil)]
    args.append("--farm-skip-busy" if skip_busy else f"--farm-lease-wait={lease_wait}")  # farm.board.leases
    args.append(f"--farm-scheduler={cluster}")  # farm.pytest_plugin.cluster
    project = project_of(ctx)  # tinyfarm.yaml: its models, and its own HIL tests after the packaged suite
    if project is not None:
        args.append(f"--farm-project={project.path}")
        args[1:1] = [str(t) for t in project.tests]
    if junit:
        args.append(f"--junitxml={junit}")
    if keyword:
        args += ["-k", keyword]
    progress = NightlyProgress(live)
    started = time.monotonic()
    try:
        with progress.display():
            code = pytest.main(args, plugins=[progress])
    except KeyboardInterrupt:
        code = pytest.ExitCode.INTERRUPTED
    seconds = time.monotonic() - started

    comparison = judge(store, run_id, thresholds)
    missing = missing_boards(progress.planned_boards, store.results_for_run(run_id), progress.skipped_boards)
    if code == pytest.ExitCode.INTERRUPTED:
        status = "interrupted"
    elif code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        status = "error"
    elif missing:  # never PASSED, never the baseline: the night did not measure every board
        status = "incomplete"
    else:
        status = "passed" if code == pytest.ExitCode.OK and not comparison.regressions else "failed"
    store.update_run_details(run_id, tests=progress.outcomes, pytest_exit_code=int(code), seconds=round(seconds, 2),
                             measured=progress.measured_count, firmware_built=progress.built,
                             firmware_cached=progress.cached, thresholds=thresholds.source,
                             devices_file=str(inventory_file), keyword=keyword, scheduler=cluster,
                             missing_boards=missing)
    use = time_use_of(store.run(run_id))
    if use is not None:
        store.update_run_details(run_id, time_use=use)
    store.finish_run(run_id, status)
    comparison.current = store.run(run_id)

    records = store.results_for_run(run_id)
    sizes = size_tables(project, state, records)  # the seed's table, for models from a Keras file / SavedModel
    if sizes:
        store.update_run_details(run_id, **{SIZE_TABLES_KEY: sizes})
    budgets = stored_verdicts(store.run(run_id))  # what the budget tests decided (farm/hil/test_budgets.py)
    print_triad(out, records, run_id)
    print_size_tables(out, sizes)
    print_comparison(out, comparison)
    print_budgets(out, budgets)
    print_verdict(out, run_id, status, comparison, progress.summary(), budgets, missing)
    if use is not None:
        out.print(time_use_text(use, seconds), soft_wrap=True)
    if junit and junit.is_file():
        add_to_junit(junit, comparison, records)
    if report_file:
        from farm.report.html import write_report

        write_report(store, run_id, report_file, thresholds=thresholds)
        err.print(f"report: {report_file}")
    if as_json:
        for record in records:
            click.echo(json.dumps(result_json(record)))
        click.echo(json.dumps({"comparison": comparison.to_json(), "budgets": budgets, SIZE_TABLES_KEY: sizes,
                               "status": status, "missing_boards": missing, "time_use": use}))
    if status == "error":
        sys.exit(EXIT_BAD_INPUT if code == pytest.ExitCode.USAGE_ERROR else EXIT_FAILED)
    sys.exit(EXIT_OK if status == "passed" else EXIT_FAILED)


def time_use_of(run: Any) -> dict[str, Any] | None:
    """Where the night's cluster jobs spent their time (farm.scale.time_use), from the job spans the
    HIL session stored in the run (None: measured in process)."""
    spans = (run.details or {}).get("cluster_jobs") if run is not None else None
    if not spans:
        return None
    from farm.scale.time_use import time_use

    return time_use(spans).to_json()


def size_tables(project: Any, state: Path, records: Sequence[Any]) -> dict[str, Any]:
    """The seed's size table (farm.models.sources.size_table) of every model of the run whose
    source is a Keras file or a SavedModel: model -> rows (farm.report.console.size_rows), or
    ``{"error": why}`` when a variant cannot be made (its tests have said so already)."""
    if project is None:
        return {}
    from farm.models.sources import size_table
    from farm.report.console import size_rows

    measured = {r.model for r in records}
    tables: dict[str, Any] = {}
    for name, entry in project.models.items():
        if name not in measured or entry.source.kind not in ("keras", "saved_model"):
            continue
        try:
            tables[name] = size_rows(size_table(name, state / "models"))
        except (ValueError, RuntimeError, OSError) as exc:  # a conversion that failed: ModelSourceError, ...
            tables[name] = {"error": str(exc)}
    return tables
