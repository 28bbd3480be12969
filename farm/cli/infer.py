"""``farm infer``: your own .tflite on a device, over every sample of an .npy file."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
from rich.markup import escape

from farm.cli.common import EXIT_FAILED, FarmUsageError, devices_file, err, farm_options, lease_options, \
    lease_policy, load_inventory, print_skipped, select_devices


@click.command("infer")
@farm_options
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", "device_name", required=True, help="Device to run on.")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="IN.npy: samples along the first axis, in the model input's dtype.")
@click.option("--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="OUT.npy: one output per sample, written here.")
@click.option("--kernels", type=click.Choice(["optimized", "reference"]), default="optimized", show_default=True,
              help="The code generator's int8 kernels: the optimized ones, or the plain reference kernels.")
@lease_options
@click.pass_context
def infer(ctx: click.Context, model: Path, device_name: str, input_path: Path, output_path: Path,
          kernels: str, lease_wait: float, skip_busy: bool) -> None:
    """Run your own .tflite on a device over every sample of IN.npy; save the outputs.

    Operators the code generator does not support are refused, by name, before
    anything is built.
    """
    from farm import codegen
    from farm.board.leases import DeviceBusy, DeviceQuarantined
    from farm.board.session import DeviceError
    from farm.config.state import state_dir
    from farm.build.fits import DoesNotFit
    from farm.measure.job import infer as run_infer

    device = select_devices(load_inventory(devices_file(ctx)), (device_name,))[0]
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
    lease = lease_policy(ctx, lease_wait, skip_busy, purpose=f"farm infer {model.name}")
    try:
        with err.status(f"{device.name}: {model.name}") as status:
            outputs = run_infer(model, device, inputs, state=state_dir(), progress=lambda m: status.update(m),
                                kernels=kernels, lease=lease)
    except (ValueError, DoesNotFit) as exc:
        raise FarmUsageError(str(exc)) from None
    except (DeviceBusy, DeviceQuarantined) as exc:
        print_skipped(exc)
        sys.exit(EXIT_FAILED)
    except DeviceError as exc:
        err.print(f"[bold red]failed:[/] {escape(str(exc))}")
        sys.exit(EXIT_FAILED)
    np.save(output_path, outputs)
    err.print(f"{len(outputs)} outputs of shape {outputs.shape[1:]} ({outputs.dtype}) -> {output_path}")
