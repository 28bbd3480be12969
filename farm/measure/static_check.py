"""The static portability check of one (device, model, variant): the very ELF that would be
flashed, built with the device's capability model, against its core.

Host-only work (model conversion, code generation, the build, the ELF scan), no board:
on a nightly's cluster it runs inside the host-only prepare job of that (device, model,
variant) on any worker (farm.scale.jobs.prepare_job), in process otherwise; the HIL
suite's static tests (farm/hil/test_portability.py) assert on the :class:`StaticCheck`
either way, through the ``static_portability`` fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StaticCheck:
    """What the static check found: the report (farm.preflight.portability.PortabilityReport),
    or the does-not-fit sentence (bytes needed and available) of a build too big for the device."""

    device: str
    model: str
    variant: str
    report: Any = None
    does_not_fit: str | None = None
    made_on: str = "in-process"  # the Dask worker whose host-only job made it, else "in-process"
    build: Any = None  # the checked build (farm.build.firmware.FirmwareBuild), None when it did not fit


def static_check(device: Any, model: str, variant: str, state: Path, kernels: str = "optimized") -> StaticCheck:
    """Build (or find cached) the (model, variant) firmware for ``device`` and check it; a build
    too big for the device is a StaticCheck with ``does_not_fit``. Other failures (an
    unsupported operator, a build error) raise, as the build itself does."""
    from farm.build.fits import DoesNotFit, check_fits
    from farm.build.prepare import prepare_firmware
    from farm.measure.job import elf_code_and_graph
    from farm.models import build_variant
    from farm.models.native_output import native_output_to
    from farm.preflight.portability import check_device

    with native_output_to(state / "logs" / "tensorflow.log"):
        art = build_variant(model, variant, state / "models")
    try:
        # the stack sized like the job's (farm.measure.job): the very ELF measure_one flashes
        firmware = prepare_firmware(art.tflite_path, model, variant, device, state, None, kernels,
                                    code_reader=elf_code_and_graph)
        check_fits(device, firmware)
    except DoesNotFit as exc:
        return StaticCheck(device.name, model, variant, does_not_fit=str(exc))
    return StaticCheck(device.name, model, variant, report=check_device(firmware.build.elf, device, variant),
                       build=firmware.build)
