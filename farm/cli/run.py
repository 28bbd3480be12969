"""``farm run``: measure models on devices; every result stored under a new run."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from farm.cli.common import EXIT_FAILED, EXIT_OK, check_models_and_variants, db_url, devices_file, err, \
    farm_options, lease_options, lease_policy, load_inventory, open_store, out, print_skipped, select_devices


@click.command("run")
@farm_options
@click.option("--device", "device_names", multiple=True, help="Device name (repeatable; default: all).")
@click.option("--model", "model_names", multiple=True, default=("sine",), show_default=True,
              help="Model name (repeatable).")
@click.option("--variant", "variants", multiple=True,
              help="float32, int8-weights or int8 (repeatable; default: all three).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per result (JSON lines).")
@lease_options
@click.pass_context
def run(ctx: click.Context, device_names: tuple[str, ...], model_names: tuple[str, ...],
        variants: tuple[str, ...], as_json: bool, lease_wait: float, skip_busy: bool) -> None:
    """Measure models on devices: counts, latency, energy, accuracy, sizes.

    Every result is stored in the results database under a new run. Exit code 1
    when any result is not "ok" (faulted, hung, does-not-fit, error).
    """
    from farm.board.leases import DeviceBusy, DeviceQuarantined, LeaseManager, quarantine_if_needed
    from farm.config.state import state_dir
    from farm.measure.job import measure_one
    from farm.models import VARIANTS
    from farm.report.console import print_results, result_json
    from farm.store.vcs import git_commit

    chosen = select_devices(load_inventory(devices_file(ctx)), device_names)
    check_models_and_variants(model_names, variants, " (for your own .tflite use `farm infer`)")
    state = state_dir()
    store = open_store(db_url(ctx))
    run_id = store.start_run("run", git_commit())
    lease = lease_policy(ctx, lease_wait, skip_busy, purpose=f"farm run {run_id}")
    records = []
    ok = True
    leases = LeaseManager(store.url, purpose=lease.purpose)
    try:
        for device in chosen:
            try:  # one run at a time on a device, held for all its measurements (farm.board.leases)
                leases.acquire(device.name, wait=lease.wait, on_wait=lambda message: err.print(escape(message)))
            except (DeviceBusy, DeviceQuarantined) as exc:
                print_skipped(exc)
                ok = False
                continue
            for model in model_names:
                for variant in variants or VARIANTS:
                    if (quarantined := leases.quarantined(device.name)) is not None:
                        print_skipped(quarantined)
                        ok = False
                        break
                    with err.status(f"{device.name} {model}/{variant}") as status:
                        record = measure_one(device, model, variant, state=state,
                                             progress=lambda msg: status.update(msg), lease=lease)
                    quarantine_if_needed(leases, device.name, record)
                    record.id = store.add_result(run_id, record)
                    record.run_id = run_id
                    records.append(record)
                    ok &= record.status == "ok"
                    if as_json:
                        click.echo(json.dumps(result_json(record)))
                    else:
                        err.print(escape(f"{device.name} {model}/{variant}: {record.status}"
                                         + (f" — {record.message}" if record.message else "")))
            leases.release(device.name)
    finally:
        leases.close()
        store.finish_run(run_id, "passed" if ok else "failed")
    if not as_json:
        print_results(out, records, title=f"run {run_id}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)
