"""Turn the fault registers a board reported into a sentence with the symbol.

e.g. "UsageFault NOCP (coprocessor/FPU instruction) at 0x000012a4 in fully_connected_f32
on a core without an FPU". The symbol comes from the one ELF reader (farm.build.elf).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farm.build.elf import symbol_at

ARM = 1
RISCV = 2
AVR = 3

_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}
_CFSR_BITS = [
    (0, "IACCVIOL", "instruction fetch from a no-execute region"),
    (1, "DACCVIOL", "data access violation"),
    (3, "MUNSTKERR", "fault on exception return unstacking"),
    (4, "MSTKERR", "fault on exception entry stacking"),
    (8, "IBUSERR", "instruction bus error"),
    (9, "PRECISERR", "precise data bus error"),
    (10, "IMPRECISERR", "imprecise data bus error"),
    (12, "STKERR", "bus fault on exception entry stacking"),
    (16, "UNDEFINSTR", "undefined instruction (an instruction the core lacks, e.g. DSP/SIMD)"),
    (17, "INVSTATE", "invalid EPSR state (e.g. ARM-mode branch on a Thumb-only core)"),
    (18, "INVPC", "invalid PC load on exception return"),
    (19, "NOCP", "coprocessor/FPU instruction"),
    (20, "STKOF", "stack overflow"),
    (24, "UNALIGNED", "unaligned access"),
    (25, "DIVBYZERO", "integer division by zero"),
]
_MCAUSE = {
    0: "instruction address misaligned",
    1: "instruction access fault",
    2: "illegal instruction (an instruction the core lacks, e.g. F extension)",
    4: "load address misaligned",
    5: "load access fault",
    6: "store address misaligned",
    7: "store access fault",
}


@dataclass(frozen=True)
class FaultReport:
    kind: str  # e.g. "UsageFault NOCP"
    pc: int
    function: str | None
    sentence: str
    registers: dict[str, int]


def decode_fault(words: tuple[int, ...], elf: Path | None, has_fpu: bool | None = None) -> FaultReport:
    if not words:
        return FaultReport("fault", 0, None, "board reported a fault without registers", {})
    if words[0] == ARM and len(words) >= 9:
        return _decode_arm(words, elf, has_fpu)
    if words[0] == RISCV and len(words) >= 4:
        return _decode_riscv(words, elf, has_fpu)
    if words[0] == AVR and len(words) >= 3:
        return _decode_avr(words)
    return FaultReport("fault", 0, None, f"board reported an unknown fault frame {list(map(hex, words))}", {})


def _where(pc: int, elf: Path | None) -> tuple[str | None, str]:
    function = symbol_at(elf, pc) if elf else None
    return function, f"at 0x{pc:08x}" + (f" in {function}" if function else "")


def _decode_arm(words: tuple[int, ...], elf: Path | None, has_fpu: bool | None) -> FaultReport:
    _, exc, cfsr, hfsr, mmfar, bfar, pc, lr, xpsr = words[:9]
    name = _EXCEPTIONS.get(exc, f"exception {exc}")
    flags = [(short, text) for bit, short, text in _CFSR_BITS if cfsr & (1 << bit)]
    kind = name + (" " + "+".join(short for short, _ in flags) if flags else "")
    if name == "HardFault" and hfsr & (1 << 30) and not flags:
        kind += " FORCED"
    function, where = _where(pc, elf)
    detail = "; ".join(text for _, text in flags) or "no fault status bits set"
    sentence = f"{kind} ({detail}) {where}"
    if any(short == "NOCP" for short, _ in flags) and has_fpu is False:
        sentence += " on a core without an FPU"
    if cfsr & (1 << 15):
        sentence += f"; bus fault address 0x{bfar:08x}"
    if cfsr & (1 << 7):
        sentence += f"; memory fault address 0x{mmfar:08x}"
    regs = {"exception": exc, "cfsr": cfsr, "hfsr": hfsr, "mmfar": mmfar, "bfar": bfar,
            "pc": pc, "lr": lr, "xpsr": xpsr}
    return FaultReport(kind, pc, function, sentence, regs)


#: major opcodes of the RISC-V F/D/Q extensions (LOAD-FP, STORE-FP, FMADD..FNMADD, OP-FP)
_RISCV_FP_OPCODES = {0x07, 0x27, 0x43, 0x47, 0x4B, 0x4F, 0x53}


def _riscv_fp_instruction(bits: int) -> bool:
    """True when the instruction bits (QEMU puts them in mtval for an illegal
    instruction) are an F/D-extension instruction, 32-bit or compressed."""
    if bits & 0x3 == 0x3:
        return bits & 0x7F in _RISCV_FP_OPCODES
    funct3 = (bits >> 13) & 0x7
    return bits & 0x3 in (0, 2) and funct3 in (1, 3, 5, 7) and bits != 0  # c.fld/c.flw/c.fsd/c.fsw(+sp)


def _decode_riscv(words: tuple[int, ...], elf: Path | None, has_fpu: bool | None = None) -> FaultReport:
    _, mcause, mepc, mtval = words[:4]
    interrupt = bool(mcause & 0x80000000)
    text = f"interrupt {mcause & 0x7FFFFFFF}" if interrupt else _MCAUSE.get(mcause, f"mcause {mcause}")
    kind = f"trap {mcause}"
    function, where = _where(mepc, elf)
    if mcause == 2 and _riscv_fp_instruction(mtval):
        kind = "trap 2 FPU"
        sentence = f"trap: illegal instruction (FPU instruction 0x{mtval:08x}, RISC-V F/D extension) {where}"
        if has_fpu is False:
            sentence += " on a core without an FPU"
    else:
        sentence = f"trap: {text} {where} (mtval 0x{mtval:08x})"
    return FaultReport(kind, mepc, function, sentence, {"mcause": mcause, "mepc": mepc, "mtval": mtval})


def _decode_avr(words: tuple[int, ...]) -> FaultReport:
    """AVR (board_avr.c): cause 1 is an interrupt whose vector has no handler."""
    _, cause, sp = words[:3]
    if cause == 1:
        sentence = f"an interrupt without a handler (avr-libc's BADISR_vect), stack pointer 0x{sp:04x}"
        return FaultReport("bad interrupt", 0, None, sentence, {"cause": cause, "sp": sp})
    return FaultReport(f"fault {cause}", 0, None, f"AVR fault {cause}, stack pointer 0x{sp:04x}",
                       {"cause": cause, "sp": sp})
