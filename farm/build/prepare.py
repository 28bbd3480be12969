"""Prepare: a model's .tflite and a device -> generated C -> firmware ELF with its sizes.

Both steps are cached: the generated sources by the model's hash (and kernel
set), the ELF by everything that goes into it (farm.build.firmware). A build the
linker refuses for want of flash or RAM is a does-not-fit verdict with the bytes,
not a build error.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm import codegen
from farm.build.elf import elf_sizes
from farm.build.firmware import BuildTarget, CodeReader, FirmwareBuild, FirmwareBuildError, build_firmware
from farm.build.locks import locked
from farm.config.machine_flags import machine_flags
from farm.build.fits import DoesNotFit, linker_overflow
from farm.build.plan_fits import check_plan_fits, object_too_large


@dataclass(frozen=True)
class PreparedFirmware:
    generated: Any  # codegen.GeneratedModel
    build: FirmwareBuild
    flash_bytes: int
    ram_bytes: int


def target_for(device: Any) -> BuildTarget:
    """The build target of an inventory device: its board, the flags of its capability model."""
    return BuildTarget(device.board, machine_flags(device.core, device.fpu, device.dsp),
                       getattr(device, "platform", None))


def prepare_firmware(tflite: Path, name: str, variant: str, device: Any, state: Path,
                     target: BuildTarget | None = None, kernels: str = "optimized",
                     code_reader: CodeReader | None = None) -> PreparedFirmware:
    """Generate C for the model and build it for the device (both cached).

    ``kernels``: the code generator's kernel set ("optimized", or "reference" for
    the plain reference kernels only; farm.codegen.lowering.KERNEL_SETS). ``code_reader``: size
    the stack from its static bound (farm.build.firmware.build_firmware)."""
    codegen.check_supported(tflite)
    digest = hashlib.sha256(tflite.read_bytes()).hexdigest()[:20]
    suffix = "" if kernels == "optimized" else f"-{kernels}"
    gen_dir = state / "generated" / f"{name}-{variant}-{digest}{suffix}"
    # Runs may share the state folder (two nightlies at once): generate into a folder of
    # this process's own, and replace and build from the shared one under a lock.
    tmp = gen_dir.with_name(f"{gen_dir.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generated = codegen.generate(tflite, tmp, name=name, variant=variant, kernels=kernels)
    try:
        check_plan_fits(device, generated)  # a 16-bit size_t core: refused before building, from the plan
    except DoesNotFit:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    verdicts: dict[str, str | None] = {}  # each failure's text classified once (the build's policy, then here)

    def does_not_fit(text: str) -> str | None:  # a verdict on the sizes: the same input fails the same way
        if text not in verdicts:
            verdicts[text] = linker_overflow(text, device) or object_too_large(text, gen_dir, device)
        return verdicts[text]

    try:
        with locked(gen_dir.with_name(f".{gen_dir.name}.lock")):
            if gen_dir.exists():
                shutil.rmtree(gen_dir)
            tmp.rename(gen_dir)
            build = build_firmware(gen_dir, target or target_for(device), state, code_reader,
                                   remember_failure=lambda text: does_not_fit(text) is not None)
    except FirmwareBuildError as exc:
        overflow = does_not_fit(str(exc))
        if overflow:
            raise DoesNotFit(overflow) from None
        raise
    sizes = elf_sizes(build.elf)
    return PreparedFirmware(generated, build, sizes.flash_bytes, sizes.ram_bytes)
