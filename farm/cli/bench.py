"""``farm bench``: every model x variant x device measured, with the cost figures side by side.

Count per inference (instructions on emulators, cycles on real cores), count
per MAC, flash and RAM bytes, the static arena next to tflite-micro's, and the
speedup of every variant over float32 per device (farm/measure/bench.py). The measurements are stored
in the results database under a new run, like `farm run`'s.
"""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape
from rich.table import Table

from farm.cli.common import EXIT_FAILED, EXIT_OK, check_models_and_variants, db_url, default_models, devices_file, \
    err, farm_options, lease_options, lease_policy, load_inventory, open_store, out, print_skipped, select_devices
from farm.config.variants import variants_help


@click.command("bench")
@farm_options
@click.option("--model", "model_names", multiple=True, help="Model name (repeatable; default: the whole zoo).")
@click.option("--device", "device_names", multiple=True, help="Device name (repeatable; default: all).")
@click.option("--variant", "variants", multiple=True,
              help=variants_help())
@click.option("--kernels", type=click.Choice(["optimized", "reference"]), default="optimized", show_default=True,
              help="The code generator's int8 kernels: the optimized ones, or the plain reference kernels "
                   "(the truth they are tested against; for a before/after).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: rows, speedups and goals.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown (for the README).")
@click.option("--profile/--no-profile", "profile", default=True, show_default=True,
              help="Profile the cells that per-layer goals judge (e.g. KWS's depthwise instructions per MAC "
                   "on qemu-m4f) when this bench measured them: a traced run each, after the bench.")
@lease_options
@click.pass_context
def bench(ctx: click.Context, model_names: tuple[str, ...], device_names: tuple[str, ...],
          variants: tuple[str, ...], kernels: str, as_json: bool, markdown: bool, profile: bool,
          lease_wait: float, skip_busy: bool) -> None:
    """Benchmark the zoo: count per inference and per MAC, sizes, arena vs TFLM, int8 speedup.

    \b
    For each model x variant x device: the count per inference (instructions on
    QEMU, an estimate of time; cycles on real cores), the count per
    multiply-accumulate, the ELF's flash and RAM bytes, the static arena next to
    what the tflite-micro interpreter needs (its whole arena, and in brackets the
    part that holds tensors; none for a hybrid model, which TFLM refuses), and per
    model and device each variant's speedup over float32.
    The optimized-kernel goals (farm/measure/bench_goals.py) are printed next to the
    figures they judge ("goals" in --json; a goal whose cell was not benched is
    "not measured"). The arena column includes the kernels' scratch buffer. The stack
    column: the build's static bound, the high-water mark painted and measured on the
    board, and the reservation sized from the bound (counted in RAM B).
    A build too big for a board is reported as not fitting, with the numbers.
    Exit code 1 when a measurement fails (anything but ok or does-not-fit).
    """
    from farm.board.leases import DeviceBusy, DeviceQuarantined, LeaseManager, quarantine_if_needed
    from farm.config.state import state_dir
    from farm.measure.bench import ACCEPTED, run_bench, speedups
    from farm.measure.job import measure_one
    from farm.store.vcs import git_commit

    chosen = select_devices(load_inventory(devices_file(ctx)), device_names)
    check_models_and_variants(model_names, variants)
    models = list(model_names) or default_models()
    state = state_dir()
    store = open_store(db_url(ctx))
    run_id = store.start_run("run", git_commit())  # a bench is a run of measurements
    lease = lease_policy(ctx, lease_wait, skip_busy, purpose=f"farm bench {run_id}")
    leases = LeaseManager(store.url, purpose=lease.purpose)
    held: set[str] = set()
    failed = False

    def measure(device, model, variant):  # one run at a time on a device (farm.board.leases)
        if device.name not in held:  # held from its first measurement to the end of the bench
            leases.acquire(device.name, wait=lease.wait, on_wait=lambda message: err.print(escape(message)))
            held.add(device.name)
        with err.status(f"{device.name} {model}/{variant}") as status:
            record = measure_one(device, model, variant, state=state, progress=lambda msg: status.update(escape(msg)),
                                 kernels=kernels, lease=lease)
        quarantine_if_needed(leases, device.name, record)
        return record

    def on_row(row, record) -> None:
        nonlocal failed
        record.id = store.add_result(run_id, record)
        failed |= row.status not in ACCEPTED
        err.print(escape(f"{row.device} {row.model}/{row.variant}: {row.status}"
                         + (f", {row.count_per_inference:,.0f} {row.unit}" if row.count_per_inference else "")
                         + (f" — {row.message}" if row.message and row.status != "ok" else "")))

    try:
        with err.status("bench") as status:
            rows = run_bench(chosen, models, state=state, variants=variants or None, measure=measure,
                             progress=lambda msg: status.update(escape(msg)), on_row=on_row, kernels=kernels)
    except (DeviceBusy, DeviceQuarantined) as exc:
        store.finish_run(run_id, "failed")
        print_skipped(exc)
        sys.exit(EXIT_FAILED)
    finally:
        for name in held:
            leases.release(name)
        leases.close()
    store.finish_run(run_id, "failed" if failed else "passed")

    from farm.measure.bench_goals import evaluate

    goals = evaluate(rows, profiled=_profiled(rows, chosen, state, kernels, lease) if profile else None)
    if as_json:
        click.echo(json.dumps({"run_id": run_id, "kernels": kernels, "rows": [r.to_json() for r in rows],
                               "speedups": speedups(rows),
                               "goals": [g.to_json() for g in goals]}, indent=2))
    elif markdown:
        from farm.measure.bench import markdown_table
        from farm.measure.bench_goals import goals_markdown

        click.echo(markdown_table(rows))
        click.echo(goals_markdown(goals))
    else:
        _print_table(rows, kernels)
        _print_goals(goals)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _profiled(rows, devices, state, kernels: str, lease) -> dict[str, float]:
    """The per-layer goals' figures (farm.measure.bench_profile); a profile that fails leaves
    its goal "not measured" and says why."""
    from farm.board.leases import DeviceBusy, DeviceQuarantined
    from farm.board.qemu import EmulatorError
    from farm.build.fits import DoesNotFit
    from farm.measure.bench_profile import profile_goals
    from farm.measure.profile import profile_one
    from farm.preflight.disassembly import PortabilityError

    def run_profile(device, model: str, variant: str):
        return profile_one(device, model, variant, state=state, kernels=kernels, lease=lease)

    try:
        with err.status("profiling") as status:
            return profile_goals(rows, devices, state=state, kernels=kernels, run_profile=run_profile,
                                 progress=lambda msg: status.update(escape(msg)))
    except (DeviceBusy, DeviceQuarantined, DoesNotFit, PortabilityError, EmulatorError, OSError) as exc:
        err.print(escape(f"profile for the per-layer goals failed: {exc}; those goals are not measured"))
        return {}


def _print_goals(goals) -> None:
    from farm.measure.bench_goals import format_figure

    measured = [g for g in goals if g.met is not None]
    if not measured:
        return
    table = Table(title="optimized-kernel goals (farm/measure/bench_goals.py)")
    for name, justify in (("goal", "left"), ("device", "left"), ("target", "right"), ("measured", "right"),
                          ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for g in measured:
        at_most = "≥" if g.figure in ("speedup", "runs_bit_exact") else "≤"
        table.add_row(g.goal, g.device, f"{at_most} {format_figure(g.figure, g.target)} {g.unit}",
                      f"{format_figure(g.figure, g.measured)} {g.unit}",
                      "[green]met[/]" if g.met else "[red]not met[/]")
    out.print(table)


def _print_table(rows, kernels: str) -> None:
    from farm.measure.bench import stack_cell, tflm_cell

    table = Table(title=f"farm bench, {kernels} int8 kernels (emulators count instructions: latency is an estimate)")
    for name, justify in (("model", "left"), ("variant", "left"), ("device", "left"), ("count/inference", "right"),
                          ("count/MAC", "right"), ("vs float32", "right"), ("flash B", "right"), ("RAM B", "right"),
                          ("arena B", "right"), ("TFLM arena B", "right"),
                          ("stack B bound/used/reserved", "right"), ("status", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.model + (" *" if r.latency_only else ""), r.variant, r.device,
            f"{r.count_per_inference:,.0f} {r.unit}" if r.count_per_inference else "—",
            f"{r.count_per_mac:.1f}" if r.count_per_mac else "—",
            f"{r.speedup_vs_float32:.2f}x" if r.speedup_vs_float32 and r.variant != "float32" else "",
            f"{r.flash_bytes:,}" if r.flash_bytes is not None else "—",
            f"{r.ram_bytes:,}" if r.ram_bytes is not None else "—",
            f"{r.arena_bytes:,}", tflm_cell(r), stack_cell(r),
            r.status if r.status == "ok" else f"[red]{escape(r.status)}[/]: {escape(r.message or '')}")
    out.print(table)
    if any(r.latency_only for r in rows):
        out.print("* latency-only: trained on generated data, accuracy not meaningful")
    out.print("TFLM arena: the tflite-micro interpreter's whole arena (in brackets: the part holding tensors)")
    out.print("stack: static bound (-fstack-usage over the call graph) / high-water mark painted and measured on "
              "the board / reservation linked (bound + margin, in RAM B); — : not known (not computable, "
              "not painted)")
