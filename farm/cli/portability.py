"""``farm portability``: the matrix model x variant x device — runs / does not fit /
not portable (why) / faulted (decoded).

Every variant of every model is built (cached) for every device with the flags
of its capability model, checked for size and scanned for what the device's core
lacks (farm.preflight.portability). Unless ``--static-only``, each build that passes is then
run briefly on its board (one inference of the first test sample, its output
compared with the host reference), so that a fault or a hang is seen and decoded;
on emulated boards the soft-float calls of one inference are measured too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from farm.cli.common import EXIT_FAILED, EXIT_OK, FarmUsageError, check_models_and_variants, default_models, \
    devices_file, err, farm_options, lease_options, lease_policy, load_inventory, out, print_skipped, \
    resolve_scheduler, scheduler_option, select_devices
from farm.config.variants import variants_help
from farm.measure.portability_matrix import GOOD, PortabilityCell, lost_cell, portability_cell


@click.command("portability")
@farm_options
@click.option("--device", "device_names", multiple=True, help="Device name (repeatable; default: all).")
@click.option("--model", "model_names", multiple=True, help="Model name (repeatable; default: all).")
@click.option("--variant", "variants", multiple=True,
              help=variants_help())
@click.option("--static-only", is_flag=True, help="Build and check only; do not run anything on the boards.")
@click.option("--json", "as_json", is_flag=True, help="Print the matrix as a JSON list of cells.")
@lease_options
@scheduler_option
@click.pass_context
def portability(ctx: click.Context, device_names: tuple[str, ...], model_names: tuple[str, ...],
                variants: tuple[str, ...], static_only: bool, as_json: bool, lease_wait: float,
                skip_busy: bool, scheduler: str | None) -> None:
    """The portability matrix, model x variant x device: runs / does not fit / not portable (why) / faulted.

    \b
    Each build is made with the flags of the device's capability model and checked
    before anything is flashed: flash and RAM against the device's; no instruction
    the core lacks (FPU, DSP/SIMD, RISC-V extensions); int8 builds float-free (no
    FPU instruction and no soft-float call reachable from model_invoke). Then it
    runs one inference on the board (unless --static-only): a fault is decoded
    into a sentence, a board that stops answering is reported as hung. For
    soft-float builds the report names the helpers, their call sites, and the
    soft-float calls one inference makes (measured on emulated boards).
    Exit code 1 when a cell does not run (or, with --static-only, does not pass).

    \b
    The board runs go to a Dask cluster like the nightly's (every board at once, one
    job per board at a time): a local one by default, a lab's with --scheduler
    tcp://HOST:8786 (or $FARM_SCHEDULER); --scheduler in-process runs the cells one
    after the other in this process. --static-only needs no board and runs here.
    """
    from farm.config.state import state_dir
    from farm.models import VARIANTS
    from farm.scale.cluster import is_in_process

    inventory = load_inventory(devices_file(ctx))
    chosen = select_devices(inventory, device_names)
    check_models_and_variants(model_names, variants)
    state = state_dir()
    lease = lease_policy(ctx, lease_wait, skip_busy, purpose="farm portability")  # each board run is leased
    cluster = resolve_scheduler(scheduler, inventory)
    combos = [(model, variant, device) for model in model_names or default_models()
              for variant in variants or VARIANTS for device in chosen]
    busy: set[str] = set()  # devices another run held (or quarantined): skipped for the rest of the matrix
    if static_only or is_in_process(cluster):
        cells = _cells_here(combos, state, lease, static_only, as_json, busy)
    else:
        cells = _cells_on_cluster(cluster, inventory, combos, lease, as_json, busy)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in cells], indent=2))
    else:
        print_matrix(cells, [d.name for d in chosen], static_only)
    sys.exit(EXIT_OK if not busy and all(c.status in GOOD for c in cells) else EXIT_FAILED)


def _cells_here(combos: list[tuple[str, str, Any]], state: Path, lease: Any, static_only: bool, as_json: bool,
                busy: set[str]) -> list[PortabilityCell]:
    """The cells one after the other in this process."""
    from farm.board.leases import DeviceBusy, DeviceQuarantined

    cells = []
    for model, variant, device in combos:
        if device.name in busy:
            continue
        try:
            with err.status(f"{device.name} {model}/{variant}") as status:
                cell = portability_cell(device, model, variant, state, run=not static_only,
                                        progress=lambda msg: status.update(escape(msg)), lease=lease)
        except (DeviceBusy, DeviceQuarantined) as exc:
            print_skipped(exc)
            busy.add(device.name)
            continue
        cells.append(cell)
        if not as_json:
            err.print(escape(f"{device.name} {model}/{variant}: {cell.status}"))
    return cells


def _cells_on_cluster(scheduler: str, inventory: Any, combos: list[tuple[str, str, Any]], lease: Any,
                      as_json: bool, busy: set[str]) -> list[PortabilityCell]:
    """The cells as board jobs on the cluster (farm.scale.board_runs); a job the cluster lost
    (its worker died, it timed out) is an infra-error cell naming the worker."""
    from farm.scale.board_runs import run_on_cluster
    from farm.scale.jobs import MeasureSpec, portability_job
    from farm.scale.security import ClusterConfigError

    specs = [MeasureSpec(device, model, variant, lease) for model, variant, device in combos]
    cells = []
    try:
        with err.status(f"portability on the cluster ({scheduler}): {len(specs)} cells") as status:
            for spec, outcome in run_on_cluster(scheduler, inventory, specs, portability_job,
                                                progress=lambda msg: status.update(escape(msg))):
                if outcome.skipped is not None:
                    if spec.board not in busy:
                        err.print(f"[yellow]skipped:[/] {escape(outcome.skipped)}")
                    busy.add(spec.board)
                    continue
                cell = outcome.record
                if not isinstance(cell, PortabilityCell):  # lost on the cluster: an infra-error record
                    cell = lost_cell(spec.device, spec.model, spec.variant,
                                     str(getattr(cell, "message", "") or "lost on the cluster"))
                cells.append(cell)
                if not as_json:
                    err.print(escape(f"{spec.label}: {cell.status} (worker {outcome.worker})"))
    except ClusterConfigError as exc:
        raise FarmUsageError(str(exc)) from None
    except OSError as exc:
        raise FarmUsageError(f"--scheduler {scheduler}: cannot reach the scheduler: {exc}") from None
    return cells


def print_matrix(cells: list[PortabilityCell], devices: list[str], static_only: bool) -> None:
    title = "portability: static checks only" if static_only else "portability: static checks + one inference"
    table = Table(title=title)
    table.add_column("model")
    table.add_column("variant")
    for name in devices:
        table.add_column(name)
    rows: dict[tuple[str, str], dict[str, PortabilityCell]] = {}
    for cell in cells:
        rows.setdefault((cell.model, cell.variant), {})[cell.device] = cell
    for (model, variant), by_device in rows.items():
        texts = []
        for name in devices:
            cell = by_device.get(name)
            if cell is None:
                texts.append("")
            else:
                colour = "green" if cell.status in GOOD else "red"
                texts.append(f"[{colour}]{escape(cell.short)}[/]")
        table.add_row(model, variant, *texts)
    out.print(table)
    for cell in cells:
        if cell.status not in GOOD:
            out.print(f"[red]{cell.model}/{cell.variant} on {cell.device}: {cell.status}[/]: {escape(cell.reason)}",
                      soft_wrap=True)
        elif cell.softfloat_helpers:
            calls = (f"{cell.softfloat_calls_per_inference:.0f} soft-float calls per inference (measured)"
                     if cell.softfloat_calls_per_inference is not None else "calls per inference not measured")
            out.print(f"{cell.model}/{cell.variant} on {cell.device}: {cell.float_kind}: "
                      f"{cell.softfloat_call_sites} call sites of {', '.join(cell.softfloat_helpers)}; {calls}",
                      soft_wrap=True)
    out.print("sf calls/inf: soft-float helper calls one inference makes, counted in QEMU's execution trace; "
              "sf call sites: static count of the calls reachable from model_invoke")
