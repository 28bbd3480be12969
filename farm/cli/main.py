"""The ``farm`` command.

Exit codes: 0 success; 1 a measurement failed or a check/test failed; 2 bad input
(inventory, model, arguments) — reported in one message, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import os

# TensorFlow (imported only when a model must be trained or converted) logs a lot
# on stderr; keep the farm's own output readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")

import click  # noqa: E402
import numpy as np
from rich.console import Console
from rich.markup import escape

from farm import __version__

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# wide tables when the output is a file or a CI log rather than a terminal
_WIDTH = None if sys.stdout.isatty() else 200
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
out = Console(highlight=False, width=_WIDTH)


class FarmUsageError(click.ClickException):
    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]error:[/] {escape(self.message)}", soft_wrap=True)


def _load_inventory(path: Path) -> Any:
    from farm.config.inventory import InventoryError, load_inventory

    try:
        return load_inventory(path)
    except InventoryError as exc:
        raise FarmUsageError(str(exc)) from None
    except FileNotFoundError:
        raise FarmUsageError(f"{path}: inventory file not found (pass --devices FILE)") from None


def _select_devices(inventory: Any, names: tuple[str, ...]) -> list[Any]:
    if not names:
        return list(inventory.devices)
    known = {d.name: d for d in inventory.devices}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise FarmUsageError(f"unknown device(s) {', '.join(unknown)}; the inventory has: {', '.join(known)}")
    return [known[n] for n in names]


def _check_models_and_variants(model_names: Sequence[str], variants: Sequence[str], known: Sequence[str],
                               hint: str = "") -> None:
    """Refuse, in one sentence, model names not in `known` and unknown variants."""
    from farm.models import VARIANTS

    unknown = [m for m in model_names if m not in known]
    if unknown:
        raise FarmUsageError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}{hint}")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise FarmUsageError(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--devices", "devices_file", type=click.Path(path_type=Path), default=Path("devices.yaml"),
              show_default=True, help="Inventory file (devices.yaml).")
@click.version_option(__version__, prog_name="farm")
@click.pass_context
def cli(ctx: click.Context, devices_file: Path) -> None:
    """tinyfarm: build TinyML models and firmware, run them on boards, measure and judge.

    \b
    Typical use:
      farm devices                         list the boards of the inventory
      farm models                          build the model zoo, show the size table
      farm run --device qemu-m3 --model sine --variant int8 --json
      farm infer my.tflite --device qemu-m4f --input in.npy --output out.npy
      farm nightly                         HIL suite on every board, summary table
      farm results --run latest            stored results

    State (model cache, firmware builds, PlatformIO core, results.db) lives in
    ./.farm or $FARM_HOME; $FARM_DB_URL selects another results database.
    """
    ctx.obj = {"devices_file": devices_file}


def _ctx_devices(ctx: click.Context) -> Path:
    return Path(ctx.obj["devices_file"])


def _devices_option(fn: Any) -> Any:
    """``--devices FILE`` on the subcommand too (``farm run --devices lab.yaml ...``)."""

    def _set(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.find_root().obj["devices_file"] = value

    return click.option("--devices", "devices_override", type=click.Path(path_type=Path), default=None,
                        expose_value=False, callback=_set, is_eager=True,
                        help="Inventory file (devices.yaml); same as the global option.")(fn)


@cli.command()
@_devices_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--clear-quarantine", "clear", multiple=True, metavar="NAME",
              help="End the quarantine of a device (repeatable), then list.")
@click.pass_context
def devices(ctx: click.Context, as_json: bool, clear: tuple[str, ...]) -> None:
    """List the inventory: each device's capabilities, how it is reached, its state.

    The state says whether a device is free, leased by a run (whose, until when)
    or quarantined (why, until when: it failed to identify), from the results
    database's lease table (farm.board.leases).
    """
    from farm.board.leases import LeaseManager
    from farm.report.console import device_rows, print_devices
    from farm.config.state import default_db_url, state_dir

    inventory = _load_inventory(_ctx_devices(ctx))
    _select_devices(inventory, clear)
    rows = device_rows(inventory)
    leases = LeaseManager(default_db_url(state_dir()), purpose="farm devices")
    try:
        for name in clear:
            if leases.clear_quarantine(name):
                err.print(f"{name}: quarantine cleared")
        for row, lease in zip(rows, leases.states([r["name"] for r in rows]), strict=True):
            row["lease"] = lease.to_json()
            if lease.state != "free":
                row["state"] = lease.text
            elif row["state"] == "ready":
                row["state"] = "free"
    finally:
        leases.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_devices(out, rows, _ctx_devices(ctx))


@cli.command()
@_devices_option
@click.option("--model", "models", multiple=True, help="Model name (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(models: tuple[str, ...], as_json: bool) -> None:
    """Build (or load from cache) every variant of the zoo models; print the size table."""
    from farm.models import VARIANTS, build_variant, list_models
    from farm.models.native_output import native_output_to
    from farm.report.console import print_model_sizes
    from farm.config.state import state_dir

    names = list(models) or list_models()
    unknown = [m for m in names if m not in list_models()]
    if unknown:
        raise FarmUsageError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(list_models())}")
    rows = []
    for name in names:
        for variant in VARIANTS:
            with err.status(f"model {name}/{variant}"), native_output_to(state_dir() / "logs" / "tensorflow.log"):
                art = build_variant(name, variant, state_dir() / "models")
            rows.append({"model": name, "variant": variant, "size_bytes": art.size_bytes,
                         "sha256": art.sha256, "metric": art.metric, "host_metric": art.host_metric,
                         "tflite": str(art.tflite_path)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_model_sizes(out, rows)


@cli.command()
@_devices_option
@click.option("--device", "device_names", multiple=True, help="Device name (repeatable; default: all).")
@click.option("--model", "model_names", multiple=True, default=("sine",), show_default=True,
              help="Model name (repeatable).")
@click.option("--variant", "variants", multiple=True,
              help="float32, int8-weights or int8 (repeatable; default: all three).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per result (JSON lines).")
@click.option("--lease-wait", "lease_wait", type=float, default=900.0, show_default=True, metavar="SECONDS",
              help="Wait this long for a device that another run holds, then skip it.")
@click.option("--skip-busy", is_flag=True, help="Skip devices that another run holds, without waiting.")
@click.pass_context
def run(ctx: click.Context, device_names: tuple[str, ...], model_names: tuple[str, ...],
        variants: tuple[str, ...], as_json: bool, lease_wait: float, skip_busy: bool) -> None:
    """Measure models on devices: counts, latency, energy, accuracy, sizes.

    Every result is stored in the results database under a new run. Exit code 1
    when any result is not "ok" (faulted, hung, does-not-fit, error).
    """
    from farm.models import VARIANTS, list_models
    from farm.measure.job import measure_one
    from farm.report.console import print_results, result_json
    from farm.store.results import ResultsStore
    from farm.config.state import default_db_url, state_dir
    from farm.store.vcs import git_commit

    inventory = _load_inventory(_ctx_devices(ctx))
    chosen = _select_devices(inventory, device_names)
    _check_models_and_variants(model_names, variants, list_models(), " (for your own .tflite use `farm infer`)")
    state = state_dir()
    store = ResultsStore(default_db_url(state))
    run_id = store.start_run("run", git_commit())
    records = []
    ok = True
    from farm.board.leases import DeviceBusy, DeviceQuarantined, LeaseManager, quarantine_if_needed

    leases = LeaseManager(store.url, purpose=f"farm run {run_id}")
    try:
        for device in chosen:
            try:  # one run at a time on a device (farm.board.leases)
                leases.acquire(device.name, wait=0.0 if skip_busy else lease_wait,
                               on_wait=lambda message: err.print(escape(message)))
            except (DeviceBusy, DeviceQuarantined) as exc:
                err.print(f"[yellow]skipped:[/] {escape(str(exc))}")
                ok = False
                continue
            for model in model_names:
                for variant in variants or VARIANTS:
                    if (quarantined := leases.quarantined(device.name)) is not None:
                        err.print(f"[yellow]skipped:[/] {escape(str(quarantined))}")
                        ok = False
                        break
                    with err.status(f"{device.name} {model}/{variant}") as status:
                        record = measure_one(device, model, variant, state=state,
                                             progress=lambda msg: status.update(msg))
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


@cli.command()
@_devices_option
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", "device_name", required=True, help="Device to run on.")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="IN.npy: samples along the first axis, in the model input's dtype.")
@click.option("--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="OUT.npy: one output per sample, written here.")
@click.option("--kernels", type=click.Choice(["optimized", "reference"]), default="optimized", show_default=True,
              help="The code generator's int8 kernels: the optimized ones, or the plain reference kernels.")
@click.pass_context
def infer(ctx: click.Context, model: Path, device_name: str, input_path: Path, output_path: Path,
          kernels: str) -> None:
    """Run your own .tflite on a device over every sample of IN.npy; save the outputs.

    Operators the code generator does not support are refused, by name, before
    anything is built.
    """
    from farm import codegen
    from farm.measure.job import DoesNotFit, infer as run_infer
    from farm.board.session import DeviceError
    from farm.config.state import state_dir

    device = _select_devices(_load_inventory(_ctx_devices(ctx)), (device_name,))[0]
    try:
        codegen.check_supported(model)
    except codegen.CodegenError as exc:
        raise FarmUsageError(str(exc)) from None
    except ValueError as exc:
        raise FarmUsageError(f"{model}: {exc}") from None
    try:
        inputs = np.load(input_path)
    except (ValueError, OSError) as exc:
        raise FarmUsageError(f"{input_path}: not a .npy file ({exc})") from None
    try:
        with err.status(f"{device.name}: {model.name}") as status:
            outputs = run_infer(model, device, inputs, state=state_dir(), progress=lambda m: status.update(m),
                                kernels=kernels)
    except (ValueError, DoesNotFit) as exc:
        raise FarmUsageError(str(exc)) from None
    except DeviceError as exc:
        err.print(f"[bold red]failed:[/] {escape(str(exc))}")
        sys.exit(EXIT_FAILED)
    np.save(output_path, outputs)
    err.print(f"{len(outputs)} outputs of shape {outputs.shape[1:]} ({outputs.dtype}) -> {output_path}")


@cli.command()
@_devices_option
@click.option("--run", "run_ref", default="latest", show_default=True, help="Run id, or 'latest'.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
def results(run_ref: str, as_json: bool) -> None:
    """Show the stored results of a run."""
    from farm.report.console import print_results, result_json
    from farm.store.results import ResultsStore
    from farm.config.state import default_db_url, state_dir

    store = ResultsStore(default_db_url(state_dir()))
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
        print_results(out, records, title=f"run {run_id}")


def main() -> None:
    cli.main(prog_name="farm")


# Commands that live in their own modules (one module per command family).
from farm.cli.nightly import nightly  # noqa: E402

cli.add_command(nightly)
from farm.cli.bench import bench  # noqa: E402
cli.add_command(bench)
from farm.cli.portability import portability; cli.add_command(portability)  # noqa: E402, E702
from farm.cli.compare import compare; cli.add_command(compare)  # noqa: E402, E702
from farm.cli.baseline import baseline; cli.add_command(baseline)  # noqa: E402, E702
from farm.cli.report import report; cli.add_command(report)  # noqa: E402, E702
from farm.cli.profile import profile; cli.add_command(profile)  # noqa: E402, E702
