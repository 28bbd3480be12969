"""``farm run``: measure models on devices; every result stored under a new run.

A model is a zoo model's name or the path of a user's ``.tflite``: the file is measured like
a zoo model (farm.models.user_tflite: generated test inputs, the reference of its kind, its
variant read from the file), its path and sha256 stored with each result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from farm.cli.common import EXIT_FAILED, EXIT_OK, FarmUsageError, check_models_and_variants, db_url, \
    devices_file, err, farm_options, lease_options, lease_policy, load_inventory, open_store, out, print_skipped, \
    select_devices
from farm.config.variants import variants_help


@click.command("run")
@farm_options
@click.option("--device", "device_names", multiple=True, help="Device name (repeatable; default: all).")
@click.option("--model", "model_names", multiple=True, default=("sine",), show_default=True,
              help="Model name, or the path of your own .tflite (repeatable).")
@click.option("--variant", "variants", multiple=True,
              help=variants_help("all; a .tflite file is the variant it is"))
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
    check_models_and_variants(model_names, variants, files=True)
    state = state_dir()
    files = {name: _user_model(Path(name), variants, state) for name in model_names if _is_file(name)}
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
                user = files.get(model)
                for variant in [user.art.variant] if user else (variants or VARIANTS):
                    if (quarantined := leases.quarantined(device.name)) is not None:
                        print_skipped(quarantined)
                        ok = False
                        break
                    name = user.art.name if user else model
                    with err.status(f"{device.name} {name}/{variant}") as status:
                        record = measure_one(device, name, variant, state=state,
                                             progress=lambda msg: status.update(msg), lease=lease,
                                             artifacts=user.art if user else None)
                    if user:
                        record.details = {**(record.details or {}), **user.provenance}
                    quarantine_if_needed(leases, device.name, record)
                    record.id = store.add_result(run_id, record)
                    record.run_id = run_id
                    records.append(record)
                    ok &= record.status == "ok"
                    if as_json:
                        click.echo(json.dumps(result_json(record)))
                    else:
                        err.print(escape(f"{device.name} {name}/{variant}: {record.status}"
                                         + (f" — {record.message}" if record.message else "")))
            leases.release(device.name)
    finally:
        leases.close()
        store.finish_run(run_id, "passed" if ok else "failed")
    if not as_json:
        print_results(out, records, title=f"run {run_id}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def _is_file(name: str) -> bool:
    from farm.cli.common import known_models
    from farm.models.user_tflite import is_tflite_path

    return is_tflite_path(name) and name not in known_models()


class _UserModel:
    """A user's .tflite made into artifacts, with what each of its results records of it."""

    def __init__(self, art: Any, provenance: dict[str, Any]) -> None:
        self.art = art
        self.provenance = provenance


def _user_model(path: Path, variants: tuple[str, ...], state: Path) -> _UserModel:
    """The artifacts of a user's .tflite; refuses (exit 2, nothing built or run) a file that is
    not a model, has an operator the code generator lacks, or is not one of the variants asked for."""
    from farm import codegen
    from farm.models.native_output import native_output_to
    from farm.models.user_tflite import UserModelError, classify_file, user_artifacts

    try:
        kind = classify_file(path)
        codegen.check_supported(path)
    except UserModelError as exc:
        raise FarmUsageError(str(exc)) from None
    except codegen.CodegenError as exc:
        raise FarmUsageError(str(exc)) from None
    except ValueError as exc:
        raise FarmUsageError(f"{path}: {exc}") from None
    if variants and kind.variant not in variants:
        raise FarmUsageError(f"{path} is a {kind.variant} model ({kind.reason}); "
                             f"--variant {', '.join(variants)} does not apply to it")
    try:
        with err.status(f"model file {path.name}: inputs and {kind.reference} reference"), \
                native_output_to(state / "logs" / "tensorflow.log"):
            art = user_artifacts(path, state / "models")
    except UserModelError as exc:
        raise FarmUsageError(str(exc)) from None
    return _UserModel(art, {"model_file": str(path.resolve()), "model_reference": kind.reference,
                            "variant_from_file": kind.reason})
