"""``farm portability``: the matrix model x variant x device — runs / does not fit /
not portable (why) / faulted (decoded).

Every variant of every model is built (cached) for every device with the flags
of its capability model, checked for size and scanned for what the device's core
lacks (farm.portability). Unless ``--static-only``, each build that passes is then
run briefly on its board (one inference of the first test sample, its output
compared with the host reference), so that a fault or a hang is seen and decoded;
on emulated boards the soft-float calls of one inference are measured too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from farm.cli import EXIT_FAILED, EXIT_OK, FarmUsageError, _ctx_devices, _devices_option, _load_inventory, \
    _select_devices, err, out

#: statuses of a cell; "portable" is a --static-only cell that passed every static check
CELL_STATUSES = ("runs", "portable", "does-not-fit", "not-portable", "faulted", "hung", "failed", "error")
GOOD = ("runs", "portable")


@dataclass
class PortabilityCell:
    model: str
    variant: str
    device: str
    status: str = "error"
    reason: str = ""
    checked: str = "static"  # "static" | "static+board"
    float_kind: str | None = None  # float-free | soft-float | hard-float (of the inference path)
    float_abi: str | None = None  # of the build: hard | soft
    softfloat_call_sites: int | None = None  # static, reachable from model_invoke
    softfloat_helpers: list[str] = field(default_factory=list)
    softfloat_calls_per_inference: float | None = None  # measured on the board (emulators), else None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    device_flash_bytes: int | None = None
    device_ram_bytes: int | None = None
    compiler_flags: str | None = None
    elf: str | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def short(self) -> str:
        """The matrix cell's text."""
        if self.status in GOOD:
            detail = self.float_kind or ""
            if self.softfloat_calls_per_inference is not None:
                detail += f", {self.softfloat_calls_per_inference:.0f} sf calls/inf"
            elif self.softfloat_call_sites:
                detail += f", {self.softfloat_call_sites} sf call sites"
            return f"{self.status} ({detail})" if detail else self.status
        return self.status


def portability_cell(device: Any, model: str, variant: str, state: Path, *, run: bool = True,
                     progress: Callable[[str], None] = lambda _: None) -> PortabilityCell:
    """One cell of the matrix; never raises for a build, a check or a board problem."""
    from farm import codegen
    from farm.boards import open_board
    from farm.emulator import EmulatorError
    from farm.firmware import FirmwareBuildError
    from farm.models import build_variant
    from farm.native_output import native_output_to
    from farm.pipeline import DoesNotFit, check_fits, fault_status, prepare_firmware
    from farm.portability import PortabilityError, check_device, count_softfloat_calls
    from farm.session import DeviceFault, DeviceHung, DeviceRefused

    cell = PortabilityCell(model, variant, device.name, device_flash_bytes=device.flash_bytes,
                           device_ram_bytes=device.ram_bytes)
    elf: Path | None = None
    try:
        progress(f"{device.name}: {model}/{variant}: model")
        with native_output_to(state / "logs" / "tensorflow.log"):
            art = build_variant(model, variant, state / "models")
        progress(f"{device.name}: {model}/{variant}: firmware")
        fw = prepare_firmware(art.tflite_path, model, variant, device, state)
        elf = fw.build.elf
        cell.elf, cell.float_abi, cell.compiler_flags = str(elf), fw.build.float_abi, fw.build.compiler_flags
        cell.flash_bytes, cell.ram_bytes = fw.flash_bytes, fw.ram_bytes
        check_fits(device, fw)
        progress(f"{device.name}: {model}/{variant}: static checks")
        report = check_device(elf, device, variant)
        cell.float_kind = report.float_kind
        cell.softfloat_call_sites, cell.softfloat_helpers = report.softfloat_call_sites, report.softfloat_helpers
        cell.violations = [asdict(v) | {"sentence": v.sentence} for v in report.violations]
        if not report.portable:
            cell.status, cell.reason = "not-portable", report.summary()
            return cell
        cell.status, cell.reason = "portable", report.summary()
        if not run:
            return cell
        cell.checked = "static+board"
        sample = np.ascontiguousarray(art.test_inputs[0])
        progress(f"{device.name}: {model}/{variant}: one inference on the board")
        with open_board(device, elf, state / "logs") as board:
            session = board.session
            session.load_input(sample.tobytes())
            session.run(1, timeout=30.0)
            ref = np.ascontiguousarray(art.ref_outputs[0])
            got = np.frombuffer(session.read_output(ref.nbytes), dtype=ref.dtype).reshape(ref.shape)
        if report.softfloat_calls and getattr(device, "emulator", None) is not None:
            progress(f"{device.name}: {model}/{variant}: counting soft-float calls")
            report.softfloat_calls_measured = count_softfloat_calls(device, elf, sample.tobytes())
            cell.softfloat_calls_per_inference = report.softfloat_calls_per_inference
        cell.status, cell.reason = "runs", report.summary()
        if not _output_matches(got, ref):
            cell.status = "failed"
            cell.reason = f"runs, but its output {got.ravel()[:4].tolist()} differs from the host reference " \
                          f"{ref.ravel()[:4].tolist()}; {report.summary()}"
    except DoesNotFit as exc:
        cell.status, cell.reason = "does-not-fit", str(exc)
    except DeviceFault as exc:
        status, message = fault_status(exc, device, elf)
        cell.status, cell.reason = "not-portable" if status == "not-portable" else "faulted", message
    except DeviceHung as exc:
        cell.status, cell.reason = "hung", f"{device.name} stopped answering: {exc}"
    except (DeviceRefused, FirmwareBuildError, EmulatorError, PortabilityError, codegen.CodegenError,
            NotImplementedError) as exc:
        cell.status, cell.reason = "error", str(exc)
    return cell


def _output_matches(got: np.ndarray, ref: np.ndarray) -> bool:
    from farm.pipeline import FLOAT_TOLERANCE

    if np.issubdtype(ref.dtype, np.integer):
        return bool(np.array_equal(got, ref))
    return bool(np.all(np.abs(got.astype(np.float64) - ref.astype(np.float64)) <= FLOAT_TOLERANCE))


@click.command("portability")
@_devices_option
@click.option("--device", "device_names", multiple=True, help="Device name (repeatable; default: all).")
@click.option("--model", "model_names", multiple=True, help="Model name (repeatable; default: all).")
@click.option("--variant", "variants", multiple=True,
              help="float32, int8-weights or int8 (repeatable; default: all three).")
@click.option("--static-only", is_flag=True, help="Build and check only; do not run anything on the boards.")
@click.option("--json", "as_json", is_flag=True, help="Print the matrix as a JSON list of cells.")
@click.pass_context
def portability(ctx: click.Context, device_names: tuple[str, ...], model_names: tuple[str, ...],
                variants: tuple[str, ...], static_only: bool, as_json: bool) -> None:
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
    """
    from farm.models import VARIANTS, list_models
    from farm.state import state_dir

    chosen = _select_devices(_load_inventory(_ctx_devices(ctx)), device_names)
    known = list_models()
    unknown = [m for m in model_names if m not in known]
    if unknown:
        raise FarmUsageError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise FarmUsageError(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    state = state_dir()
    cells = []
    for model in model_names or known:
        for variant in variants or VARIANTS:
            for device in chosen:
                with err.status(f"{device.name} {model}/{variant}") as status:
                    cell = portability_cell(device, model, variant, state, run=not static_only,
                                            progress=lambda msg: status.update(escape(msg)))
                cells.append(cell)
                if not as_json:
                    err.print(escape(f"{device.name} {model}/{variant}: {cell.status}"))
    if as_json:
        click.echo(json.dumps([c.to_json() for c in cells], indent=2))
    else:
        print_matrix(cells, [d.name for d in chosen], static_only)
    sys.exit(EXIT_OK if all(c.status in GOOD for c in cells) else EXIT_FAILED)


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
