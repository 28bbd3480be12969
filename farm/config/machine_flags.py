"""Compiler machine flags from a device's capability model (core, fpu, dsp).

The core facts (its ``-mfpu`` options, whether DSP is optional) come from the
capability table (:mod:`farm.config.capabilities`). Never per-board special
cases: a core with a declared FPU is built hard-float for it, a core without one
soft-float; DSP is turned off on cores that may lack it when the inventory says it
is absent (``+nodsp``).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.config.capabilities import CORES, Core, CoreInfo, Fpu


class UnsupportedCoreError(ValueError):
    """No compiler flags are known for this core/fpu/dsp combination."""


@dataclass(frozen=True)
class MachineFlags:
    arch: str  # "arm" | "riscv" | "avr"
    flags: tuple[str, ...]
    float_abi: str  # "hard" | "soft"

    @property
    def text(self) -> str:
        return " ".join(self.flags)


def machine_flags(core: str, fpu: str, dsp: bool) -> MachineFlags:
    """The compiler flags of a core with the declared FPU and DSP, from the capability table."""
    try:
        known = Core(str(core))
    except ValueError:
        raise UnsupportedCoreError(f"no compiler flags known for core {str(core)!r}") from None
    try:
        unit = Fpu(str(fpu))
    except ValueError:
        raise UnsupportedCoreError(f"unknown fpu {str(fpu)!r} for {known}; expected one of none, sp, dp") from None
    info = CORES[known]
    if info.family == "avr":
        # the chip (-mmcu) is the board's (build.mcu in its board file); floats are avr-libc's soft-float
        return MachineFlags("avr", (), "soft")
    if info.family == "riscv":
        return _riscv(info, unit)
    return _arm(known, info, unit, dsp)


def _arm(core: Core, info: CoreInfo, fpu: Fpu, dsp: bool) -> MachineFlags:
    extensions = []
    if fpu is Fpu.NONE and info.mfpu:
        extensions.append("+nofp")
    if not dsp and info.dsp_optional:
        extensions.append("+nodsp")
    flags = [f"-mcpu={core}{''.join(extensions)}", "-mthumb"]
    if fpu is Fpu.NONE:
        return MachineFlags("arm", (*flags, "-mfloat-abi=soft"), "soft")
    option = info.mfpu.get(fpu)
    if option is None:
        raise UnsupportedCoreError(f"{core} has no {fpu} FPU")
    return MachineFlags("arm", (*flags, "-mfloat-abi=hard", f"-mfpu={option}"), "hard")


def _riscv(info: CoreInfo, fpu: Fpu) -> MachineFlags:
    base = info.isa.removeprefix("rv32")
    if fpu is Fpu.NONE:
        isa = base.replace("f", "").replace("d", "")
        return MachineFlags("riscv", (f"-march=rv32{isa}", "-mabi=ilp32", "-misa-spec=2.2"), "soft")
    isa = base if "f" in base else base.replace("m", "mf", 1)
    abi = "ilp32d" if fpu is Fpu.DP else "ilp32f"
    return MachineFlags("riscv", (f"-march=rv32{isa}", f"-mabi={abi}", "-misa-spec=2.2"), "hard")
