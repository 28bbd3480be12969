"""``farm nightly``: the HIL suite on every device, stored under one nightly run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from farm.cli import EXIT_FAILED, EXIT_OK, _ctx_devices, _devices_option, _load_inventory, out


@click.command()
@_devices_option
@click.option("--junit", "junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("-k", "keyword", help="Only run HIL tests matching this pytest -k expression.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's results as JSON lines at the end.")
@click.pass_context
def nightly(ctx: click.Context, junit: Path | None, keyword: str | None, as_json: bool) -> None:
    """Run the HIL suite (tests/hil) on every device of the inventory; print the triad.

    Results go to the results database under one nightly run; the summary shows
    size, latency and accuracy per model, variant and board. Exit code 1 when a
    HIL test failed.
    """
    import pytest

    from farm.report import print_triad, result_json
    from farm.results import ResultsStore
    from farm.state import default_db_url, state_dir
    from farm.vcs import git_commit

    devices_file = _ctx_devices(ctx)
    _load_inventory(devices_file)  # fail fast, with file/line/field
    state = state_dir()
    store = ResultsStore(default_db_url(state))
    run_id = store.start_run("nightly", git_commit())
    hil = Path(__file__).resolve().parent.parent / "tests" / "hil"
    os.environ["FARM_HOME"] = str(state)  # the suite's measurements share this state folder
    args = [str(hil), "-p", "no:cacheprovider", "-q", "-ra", f"--farm-devices={devices_file.resolve()}",
            f"--farm-run-id={run_id}", f"--farm-db={default_db_url(state)}", "--rootdir", str(hil),
            "--confcutdir", str(hil)]
    if junit:
        args.append(f"--junitxml={junit}")
    if keyword:
        args += ["-k", keyword]
    code = pytest.main(args)
    store.finish_run(run_id, "passed" if code == 0 else "failed")
    records = store.results_for_run(run_id)
    print_triad(out, records, run_id)
    if as_json:
        for record in records:
            click.echo(json.dumps(result_json(record)))
    sys.exit(EXIT_OK if code == 0 else EXIT_FAILED)
