"""The capability table: what each core allows and what each emulated machine is.

One place for the facts the other stages read: the inventory validates a device
against it (FPU/DSP allowed for the core, the machine's core), the build turns a
core into compiler flags (:mod:`farm.config.machine_flags`), the QEMU driver
looks up the binary of a machine, and every stage asks :func:`count_unit` whether
a device's counts are cycles or instructions.

An emulated machine is listed only when the farm can build for it and run it: it
has a board file in ``farm/firmware/platform/boards`` (``board``) and a QEMU binary.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from farm.store.status import Unit


class Core(enum.StrEnum):
    CORTEX_M0 = "cortex-m0"
    CORTEX_M0PLUS = "cortex-m0plus"
    CORTEX_M3 = "cortex-m3"
    CORTEX_M4 = "cortex-m4"
    CORTEX_M7 = "cortex-m7"
    CORTEX_M23 = "cortex-m23"
    CORTEX_M33 = "cortex-m33"
    CORTEX_M55 = "cortex-m55"
    RV32IMC = "rv32imc"
    RV32IMAC = "rv32imac"
    RV32IMAFC = "rv32imafc"
    ESP32C3 = "esp32c3"
    AVR = "avr"  # 8-bit AVR (megaAVR: ATmega2560, ATmega1284P): no FPU, no DSP, 16-bit int


class Fpu(enum.StrEnum):
    NONE = "none"
    SP = "sp"  # single precision only (e.g. Cortex-M4F FPv4-SP, RISC-V F)
    DP = "dp"  # single and double precision (e.g. Cortex-M7 FPv5-D16)


@dataclass(frozen=True)
class CoreInfo:
    """What an ISA allows: ``fpu_options`` are the FPU configurations silicon with
    this core can have, ``dsp_possible`` whether it can have the DSP/SIMD extension.

    The compiler's view of the same core: ``mfpu`` is the Arm ``-mfpu`` option for
    each FPU precision the core can have, ``dsp_optional`` whether the DSP
    extension is an option of the core that ``+nodsp`` switches off (Armv8-M)."""

    arch: str  # armv6m | armv7m | armv7em | armv8m.base | armv8m.main | armv8.1m.main | rv32 | avr
    isa: str  # the ISA string a compiler targets (-march for RISC-V; AVR: the chip's -mmcu, from its board file)
    fpu_options: tuple[Fpu, ...]
    dsp_possible: bool
    mfpu: Mapping[Fpu, str] = field(default_factory=dict)  # Arm only
    dsp_optional: bool = False

    int_bits: int = 32  # the C compiler's `int` (16 on AVR)

    @property
    def family(self) -> Literal["arm", "riscv", "avr"]:
        if self.arch == "avr":
            return "avr"
        return "riscv" if self.arch == "rv32" else "arm"


NO_FPU = (Fpu.NONE,)

CORES: Mapping[Core, CoreInfo] = types.MappingProxyType(
    {
        Core.CORTEX_M0: CoreInfo("armv6m", "armv6-m", NO_FPU, False),
        Core.CORTEX_M0PLUS: CoreInfo("armv6m", "armv6-m", NO_FPU, False),
        Core.CORTEX_M3: CoreInfo("armv7m", "armv7-m", NO_FPU, False),
        Core.CORTEX_M4: CoreInfo("armv7em", "armv7e-m", (Fpu.NONE, Fpu.SP), True, {Fpu.SP: "fpv4-sp-d16"}),
        Core.CORTEX_M7: CoreInfo(
            "armv7em", "armv7e-m", (Fpu.NONE, Fpu.SP, Fpu.DP), True, {Fpu.SP: "fpv5-sp-d16", Fpu.DP: "fpv5-d16"}
        ),
        Core.CORTEX_M23: CoreInfo("armv8m.base", "armv8-m.base", NO_FPU, False),
        Core.CORTEX_M33: CoreInfo(
            "armv8m.main", "armv8-m.main", (Fpu.NONE, Fpu.SP), True, {Fpu.SP: "fpv5-sp-d16"}, dsp_optional=True
        ),
        Core.CORTEX_M55: CoreInfo(
            "armv8.1m.main", "armv8.1-m.main", (Fpu.NONE, Fpu.SP, Fpu.DP), True,
            {Fpu.SP: "fpv5-d16", Fpu.DP: "fpv5-d16"}, dsp_optional=True,
        ),
        Core.RV32IMC: CoreInfo("rv32", "rv32imc", NO_FPU, False),
        Core.RV32IMAC: CoreInfo("rv32", "rv32imac", NO_FPU, False),
        Core.RV32IMAFC: CoreInfo("rv32", "rv32imafc", (Fpu.SP,), False),
        Core.ESP32C3: CoreInfo("rv32", "rv32imc", NO_FPU, False),  # a plain RV32IMC to the compiler
        # 8-bit AVR: Harvard, no FPU (float is avr-libc's soft-float; double is 32-bit), no DSP,
        # a 16-bit int; which chip (avr6, avr51, ...) is the board's -mmcu
        Core.AVR: CoreInfo("avr", "avr", NO_FPU, False, int_bits=16),
    }
)


class EmulatorKind(enum.StrEnum):
    QEMU = "qemu"
    SIMAVR = "simavr"  # cycle-accurate AVR core, run by the farm's runner (farm/board/simavr.py)


@dataclass(frozen=True)
class MachineInfo:
    """An emulated machine the farm can build for and run: the core it emulates,
    its board file (``farm/firmware/platform/boards/<board>.json``) and its emulator binary."""

    core: Core
    board: str  # PlatformIO board id
    binary: str  # QEMU: the binary; simavr: the runner the farm builds against libsimavr
    unit: Unit = Unit.INSTRUCTIONS  # what the emulator's timer counts (simavr models cycles)


# QEMU emulates every optional unit of these cores (FPU, DSP), so a device may
# declare any fpu/dsp its core allows; one that declares less gets a conservative build.
MACHINES: Mapping[EmulatorKind, Mapping[str, MachineInfo]] = types.MappingProxyType(
    {
        EmulatorKind.QEMU: types.MappingProxyType(
            {
                "mps2-an385": MachineInfo(Core.CORTEX_M3, "qemu-mps2-an385", "qemu-system-arm"),  # no FPU, no DSP
                "mps2-an386": MachineInfo(Core.CORTEX_M4, "qemu-mps2-an386", "qemu-system-arm"),  # FPv4-SP, DSP
                "sifive_e": MachineInfo(Core.RV32IMAC, "qemu-sifive-e", "qemu-system-riscv32"),
            }
        ),
        # simavr models the AVR core cycle by cycle: the chip's own 16-bit timer at the
        # core clock counts cycles, as on the real chip (the machine is simavr's mcu name)
        EmulatorKind.SIMAVR: types.MappingProxyType(
            {
                "atmega2560": MachineInfo(Core.AVR, "simavr-atmega2560", "simavr-runner", Unit.CYCLES),
                "atmega1284p": MachineInfo(Core.AVR, "simavr-atmega1284p", "simavr-runner", Unit.CYCLES),
            }
        ),
    }
)

#: the source of a count, per emulator kind (the honest-numbers label)
COUNT_SOURCE: Mapping[EmulatorKind, str] = types.MappingProxyType(
    {
        EmulatorKind.QEMU: "QEMU -icount, instructions (no pipeline or memory timing)",
        EmulatorKind.SIMAVR: "simavr, cycle-accurate AVR core",
    }
)

#: the core each emulated machine runs (the inventory's view of :data:`MACHINES`)
EMULATED_MACHINES: Mapping[EmulatorKind, Mapping[str, Core]] = types.MappingProxyType(
    {kind: types.MappingProxyType({m: info.core for m, info in machines.items()}) for kind, machines in MACHINES.items()}
)


#: machine -> its QEMU binary
QEMU_BINARIES: Mapping[str, str] = types.MappingProxyType(
    {machine: info.binary for machine, info in MACHINES[EmulatorKind.QEMU].items()}
)


class UnknownMachineError(KeyError):
    """A machine the capability table does not list."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def qemu_binary(machine: str) -> str:
    """The QEMU binary that runs ``machine``; :class:`UnknownMachineError` names the known ones."""
    binary = QEMU_BINARIES.get(machine)
    if binary is None:
        raise UnknownMachineError(f"no QEMU binary known for machine {machine!r} (known: {sorted(QEMU_BINARIES)})")
    return binary


class _CountedDevice(Protocol):
    """What :func:`count_unit` reads of a device (an inventory ``Device``)."""

    @property
    def emulator(self) -> Any: ...

    @property
    def flash(self) -> Any: ...


def count_unit(device: _CountedDevice) -> Unit:
    """What a device's timer counts: QEMU (an emulated device, or a serial device
    flashed by protocol ``qemu``) counts executed instructions; simavr, whose AVR core
    is cycle-accurate, and silicon count cycles. The one place that decides it."""
    emulator = device.emulator
    if emulator is not None:
        info = MACHINES.get(EmulatorKind(str(emulator.kind)), {}).get(str(emulator.machine))
        return info.unit if info is not None else Unit.INSTRUCTIONS
    flashed_by_qemu = device.flash is not None and device.flash.protocol == "qemu"
    return Unit.INSTRUCTIONS if flashed_by_qemu else Unit.CYCLES
