"""Compiler machine flags from a device's capability model (core, fpu, dsp).

Never per-board special cases: a core with a declared FPU is built hard-float
for it, a core without one soft-float; DSP is turned off on cores that may lack it
when the inventory says it is absent (``+nodsp``).
"""

from __future__ import annotations

from dataclasses import dataclass


class UnsupportedCoreError(ValueError):
    """No compiler flags are known for this core/fpu/dsp combination."""


@dataclass(frozen=True)
class MachineFlags:
    arch: str  # "arm" | "riscv"
    flags: tuple[str, ...]
    float_abi: str  # "hard" | "soft"

    @property
    def text(self) -> str:
        return " ".join(self.flags)


# core -> (FPU option for sp, FPU option for dp); None: that precision is not available
_ARM_FPUS: dict[str, tuple[str | None, str | None]] = {
    "cortex-m0": (None, None),
    "cortex-m0plus": (None, None),
    "cortex-m3": (None, None),
    "cortex-m23": (None, None),
    "cortex-m4": ("fpv4-sp-d16", None),
    "cortex-m7": ("fpv5-sp-d16", "fpv5-d16"),
    "cortex-m33": ("fpv5-sp-d16", None),
    "cortex-m55": ("fpv5-d16", "fpv5-d16"),
}
_ARM_OPTIONAL_DSP = {"cortex-m33", "cortex-m55"}


#: cores named by their chip that are plain RISC-V cores to the compiler
_RISCV_ALIASES = {"esp32c3": "rv32imc"}


def machine_flags(core: str, fpu: str, dsp: bool) -> MachineFlags:
    core, fpu = str(core), str(fpu)
    core = _RISCV_ALIASES.get(core, core)
    if core in _ARM_FPUS:
        return _arm(core, fpu, dsp)
    if core.startswith("rv32"):
        return _riscv(core, fpu)
    raise UnsupportedCoreError(f"no compiler flags known for core {core!r}")


def _arm(core: str, fpu: str, dsp: bool) -> MachineFlags:
    sp, dp = _ARM_FPUS[core]
    cpu = core
    extensions = []
    if fpu == "none" and (sp or dp):
        extensions.append("+nofp")
    if not dsp and core in _ARM_OPTIONAL_DSP:
        extensions.append("+nodsp")
    flags = [f"-mcpu={cpu}{''.join(extensions)}", "-mthumb"]
    if fpu == "none":
        return MachineFlags("arm", (*flags, "-mfloat-abi=soft"), "soft")
    option = sp if fpu == "sp" else dp
    if option is None:
        raise UnsupportedCoreError(f"{core} has no {fpu} FPU")
    return MachineFlags("arm", (*flags, "-mfloat-abi=hard", f"-mfpu={option}"), "hard")


def _riscv(core: str, fpu: str) -> MachineFlags:
    base = core.removeprefix("rv32")
    if fpu == "none":
        isa = base.replace("f", "").replace("d", "")
        return MachineFlags("riscv", (f"-march=rv32{isa}", "-mabi=ilp32", "-misa-spec=2.2"), "soft")
    isa = base if "f" in base else base.replace("m", "mf", 1)
    abi = "ilp32d" if fpu == "dp" else "ilp32f"
    return MachineFlags("riscv", (f"-march=rv32{isa}", f"-mabi={abi}", "-misa-spec=2.2"), "hard")
