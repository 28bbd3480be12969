"""``farm profile``: instructions per function of one inference, on an emulated board."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from farm.cli.common import FarmUsageError, check_models_and_variants, devices_file, err, farm_options, \
    lease_options, lease_policy, load_inventory, out, print_skipped, resolve_scheduler, scheduler_option, \
    select_devices
from farm.config.variants import VARIANTS


@click.command("profile")
@farm_options
@click.option("--device", "device_name", required=True, help="An emulated device of the inventory.")
@click.option("--model", required=True, help="A model of the zoo.")
@click.option("--variant", default="int8", show_default=True, help=", ".join(VARIANTS) + ".")
@click.option("--kernels", type=click.Choice(["optimized", "reference"]), default="optimized", show_default=True,
              help="The code generator's int8 kernels.")
@click.option("--top", default=15, show_default=True, help="How many functions to list (the rest are summed).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole profile as one JSON object.")
@lease_options
@scheduler_option
@click.pass_context
def profile(ctx: click.Context, device_name: str, model: str, variant: str, kernels: str, top: int,
            as_json: bool, lease_wait: float, skip_busy: bool, scheduler: str | None) -> None:
    """Where one inference's instructions go: a count per function, measured.

    \b
    QEMU runs the model's first test sample with its execution trace on: the
    board runs 1 and then 3 inferences in two fresh emulators, and the difference
    per function, halved, is one inference. Functions reachable from
    model_invoke are listed (kernels, their cores, helpers). Attribution is per
    translation block (an interrupt that cuts a block short charges it whole),
    so totals can differ from `farm run`'s count by a few instructions.
    Emulated boards only; a trace of a big float model on a core without an FPU
    takes minutes.

    \b
    Runs in this process unless a cluster is named (--scheduler tcp://HOST:8786 or
    'local', $FARM_SCHEDULER, or the inventory's cluster.scheduler): then the
    profile is a board job on the worker serving the board.
    """
    import sys

    from farm.board.leases import DeviceBusy, DeviceQuarantined
    from farm.cli.common import EXIT_FAILED
    from farm.config.state import state_dir
    from farm.measure.profile import profile_one
    from farm.build.fits import DoesNotFit
    from farm.preflight.disassembly import PortabilityError
    from farm.scale.cluster import IN_PROCESS, is_in_process
    from farm.scale.jobs import MeasureSpec

    inventory = load_inventory(devices_file(ctx))
    device = select_devices(inventory, (device_name,))[0]
    if getattr(device, "emulator", None) is None:
        raise FarmUsageError(f"device {device.name} is not emulated: profiles come from QEMU's execution trace")
    check_models_and_variants((model,), (variant,))
    lease = lease_policy(ctx, lease_wait, skip_busy, purpose="farm profile")
    cluster = resolve_scheduler(scheduler, inventory, default=IN_PROCESS[0])
    with err.status(f"{device.name} {model}/{variant}: building") as status:
        try:
            if is_in_process(cluster):
                result = profile_one(device, model, variant, state=state_dir(), kernels=kernels, lease=lease,
                                     progress=lambda msg: status.update(escape(msg)))
            else:
                result = _profile_on_cluster(cluster, inventory, MeasureSpec(device, model, variant, lease, kernels),
                                             lambda msg: status.update(escape(msg)))
        except (DoesNotFit, PortabilityError) as exc:
            raise FarmUsageError(str(exc)) from None
        except (DeviceBusy, DeviceQuarantined) as exc:
            print_skipped(exc)
            sys.exit(EXIT_FAILED)
    if as_json:
        doc = result.to_json()
        doc.update(model=model, variant=variant, kernels=kernels)
        click.echo(json.dumps(doc, indent=2))
        return
    table = Table(title=f"{device.name} {model}/{variant} ({kernels} kernels): instructions per inference, "
                        "measured per function (QEMU execution trace)")
    for name, justify in (("function", "left"), ("instructions", "right"), ("share", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in result.functions[:top]:
        table.add_row(escape(f.function), f"{f.instructions:,.0f}", f"{f.share:.1%}")
    rest = result.functions[top:]
    if rest:
        table.add_row(f"({len(rest)} more)", f"{sum(f.instructions for f in rest):,.0f}",
                      f"{sum(f.share for f in rest):.1%}")
    table.add_row("[bold]total[/]", f"[bold]{result.total:,.0f}[/]", "100.0%")
    out.print(table)


def _profile_on_cluster(scheduler: str, inventory: Any, spec: Any, progress: Any) -> Any:
    """The profile as a board job on the cluster; what the job could not do is said as here
    (a lost job, a skipped board: exit 1 with the sentence)."""
    import sys

    from farm.cli.common import EXIT_FAILED
    from farm.scale.board_runs import run_on_cluster
    from farm.scale.jobs import profile_job
    from farm.scale.security import ClusterConfigError

    try:
        ((_, outcome),) = list(run_on_cluster(scheduler, inventory, [spec], profile_job, progress=progress))
    except ClusterConfigError as exc:
        raise FarmUsageError(str(exc)) from None
    except OSError as exc:
        raise FarmUsageError(f"--scheduler {scheduler}: cannot reach the scheduler: {exc}") from None
    if outcome.skipped is not None:
        err.print(f"[yellow]skipped:[/] {escape(outcome.skipped)}")
        sys.exit(EXIT_FAILED)
    if not hasattr(outcome.record, "functions"):  # lost on the cluster: an infra-error record
        err.print(f"[red]infra-error:[/] {escape(str(getattr(outcome.record, 'message', 'lost on the cluster')))}")
        sys.exit(EXIT_FAILED)
    return outcome.record
