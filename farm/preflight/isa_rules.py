"""What each core can execute, and which compiler-runtime routines are soft float.

* :func:`lacking`: why a core cannot execute an instruction (an FPU/VFP instruction
  on an FPU-less Arm core, double precision on a single-precision FPU, DSP/SIMD
  without the DSP extension, 32-bit Thumb-2 and hardware divide on Armv6-M; RISC-V
  F/D instructions without an FPU (also when the disassembler shows them as
  ``.word``), M/A/C instructions without that extension).
* :func:`is_fpu_instruction`: an FPU instruction, on any core.
* :func:`is_softfloat_helper`: an Arm RTABI, libgcc or avr-libc soft-float routine's name
  (AVR: no core has an FPU; avr-libc's libm implements float -- and double, which is
  32-bit there -- in ``__addsf3``, ``__mulsf3``, ``__divsf3``, ``__fixsfsi``, ... over
  internal ``__fp_*`` routines).

The cores' facts (family, profile, ISA string) come from farm.config.capabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from farm.build.elf import ElfFunction
from farm.config.capabilities import CORES, Core
from farm.preflight.disassembly import Instruction, PortabilityError

# --------------------------------------------------------------------------- helper names

_SOFTFLOAT = re.compile(
    r"^__aeabi_(?:[fd][a-z0-9]+|c[fd]r?cmp[a-z]*|u?[il]2[fd]|h2f|f2h|d2h)$"  # Arm RTABI
    r"|^__(?:add|sub|mul|div|neg)[hsdtx]f[23]$"  # libgcc (Arm and RISC-V)
    r"|^__(?:eq|ne|lt|le|gt|ge|unord|cmp)[hsdt]f2$"
    r"|^__float(?:un)?[sdt]i[hsdt]f$"
    r"|^__fix(?:uns)?[hsdt]f[sdt]i$"
    r"|^__(?:extend|trunc)[hsdt]f[hsdt]f2$"
    r"|^__powi[sdt]f2$"
    r"|^__(?:mul|div)[sdt]c3$"
    r"|^__fp_[A-Za-z0-9_]+$"  # avr-libc's internal float routines (__fp_split3, __fp_round, ...)
    r"|^__(?:add|sub|mul|div)sf3x$|^__mulsf3_pse$"  # avr-libc's extended-result float entry points
)


def is_softfloat_helper(name: str) -> bool:
    """True for a compiler-runtime soft-float routine (Arm RTABI, libgcc or avr-libc name)."""
    return bool(_SOFTFLOAT.match(name))


def softfloat_helper(function: ElfFunction) -> str | None:
    """The soft-float helper name a function goes by (its first such alias), or None."""
    return next((n for n in function.names if is_softfloat_helper(n)), None)


# --------------------------------------------------------------------------- instruction sets

#: Arm condition-code suffixes
ARM_CONDS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al")
_ARM_DSP = frozenset(
    {
        # signed multiplies on halfwords, word x halfword, most-significant word
        "smlabb", "smlabt", "smlatb", "smlatt", "smlawb", "smlawt",
        "smulbb", "smulbt", "smultb", "smultt", "smulwb", "smulwt",
        "smlalbb", "smlalbt", "smlaltb", "smlaltt",
        "smlad", "smladx", "smlsd", "smlsdx", "smlald", "smlaldx", "smlsld", "smlsldx",
        "smuad", "smuadx", "smusd", "smusdx",
        "smmla", "smmlar", "smmls", "smmlsr", "smmul", "smmulr", "umaal",
        # saturating arithmetic
        "qadd", "qsub", "qdadd", "qdsub",
        # packing, extend-and-add, select, SIMD saturate, sum of absolute differences
        "pkhbt", "pkhtb", "sel", "ssat16", "usat16", "usad8", "usada8",
        "sxtab", "sxtab16", "sxtah", "sxtb16", "uxtab", "uxtab16", "uxtah", "uxtb16",
    }
    | {p + op for p in ("s", "q", "sh", "u", "uq", "uh")
       for op in ("add8", "add16", "sub8", "sub16", "asx", "sax")}
)  # fmt: skip
#: the only 32-bit Thumb instructions Armv6-M has
_ARMV6M_WIDE_OK = frozenset({"bl", "dmb", "dsb", "isb", "mrs", "msr"})
_ARMV6M_LACKS = frozenset({"sdiv", "udiv", "cbz", "cbnz"})
_ARM_COPROC_FP = re.compile(r"^(?:mcr|mrc|mcrr|mrrc|ldc|stc|cdp)2?l?\b.*\bp1[01]\b")

_RV_M = frozenset({"mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"})
_RV_FP_OPCODES = {0x07: "FP load", 0x27: "FP store", 0x43: "fmadd", 0x47: "fmsub", 0x4B: "fnmsub",
                  0x4F: "fnmadd", 0x53: "FP arithmetic"}
_RV_FP_CSRS = re.compile(r"\b(?:fflags|frm|fcsr)\b")
_RAW_DIRECTIVES = frozenset({".word", ".4byte", ".insn", ".2byte", ".short", ".inst", ".inst.w", ".inst.n"})


# --------------------------------------------------------------------------- the core's instruction set


@dataclass(frozen=True)
class CoreSpec:
    core: str
    arch: str  # isa family: "arm" | "riscv" | "avr"
    profile: str  # inventory arch: armv6m, armv7m, armv7em, ..., rv32
    extensions: frozenset[str]  # RISC-V letters (i, m, a, c, f, d)
    fpu: str
    dsp: bool

    @classmethod
    def of(cls, core: str, fpu: str, dsp: bool) -> CoreSpec:
        try:
            info = CORES[Core(str(core))]
        except ValueError:
            raise PortabilityError(f"unknown core {core!r}; known: {', '.join(c.value for c in Core)}") from None
        letters: frozenset[str] = frozenset()
        if info.family == "riscv":
            letters = frozenset(info.isa.removeprefix("rv32")) - {"f", "d"}
            if str(fpu) in ("sp", "dp"):
                letters |= {"f"}
            if str(fpu) == "dp":
                letters |= {"d"}
        return cls(str(core), info.family, info.arch, letters, str(fpu), bool(dsp))


def lacking(ins: Instruction, spec: CoreSpec) -> str | None:
    """Why the core cannot execute this instruction, or None when it can.

    AVR: the chip is fixed by the build's -mmcu, so avr-gcc emits only what that chip
    has; and no AVR has an FPU (its fmul/fmuls/fmulsu are integer fractional multiplies)."""
    if spec.arch == "avr":
        return None
    return _arm_lacking(ins, spec) if spec.arch == "arm" else _riscv_lacking(ins, spec)


def _arm_base(mnemonic: str) -> str:
    base = mnemonic.split(".")[0]
    for cond in ARM_CONDS:  # conditional forms inside IT blocks: smlabbeq -> smlabb
        if base.endswith(cond) and base[: -len(cond)] in _ARM_DSP:
            return base[: -len(cond)]
    return base


def _is_arm_fpu(ins: Instruction) -> bool:
    if ins.mnemonic.startswith("v"):
        return True
    return bool(_ARM_COPROC_FP.match(f"{ins.mnemonic} {ins.operands}"))


def _arm_lacking(ins: Instruction, spec: CoreSpec) -> str | None:
    if ins.mnemonic.startswith("."):
        return None  # literal pool data
    base = _arm_base(ins.mnemonic)
    if _is_arm_fpu(ins):
        if spec.fpu == "none":
            return "FPU instruction on a core without an FPU"
        if spec.fpu == "sp" and ".f64" in ins.mnemonic:
            return "double-precision FPU instruction on a single-precision FPU"
        return None
    if base in _ARM_DSP and not spec.dsp:
        return "DSP/SIMD instruction on a core without the DSP extension"
    if spec.profile == "armv6m":
        if base in _ARMV6M_LACKS or base.startswith("it"):
            return "Thumb-2 instruction on an Armv6-M core"
        if ins.size == 4 and base not in _ARMV6M_WIDE_OK:
            return "32-bit Thumb-2 instruction on an Armv6-M core"
    return None


def _riscv_raw_fp(ins: Instruction) -> str | None:
    """F/D instructions the disassembler shows as raw data (.word/.insn): decode the opcode."""
    try:
        value = int(ins.operands.split()[0].rstrip(","), 0)
    except (ValueError, IndexError):
        return None
    if ins.size == 2 or value <= 0xFFFF and value & 0x3 != 0x3:
        quadrant, funct3 = value & 0x3, (value >> 13) & 0x7
        if quadrant in (0, 2) and funct3 in (1, 3, 5, 7):  # c.fld/c.flw/c.fsd/c.fsw (+sp forms) on RV32
            return "d" if funct3 in (1, 5) else "f"
        return None
    opcode = value & 0x7F
    if opcode not in _RV_FP_OPCODES:
        return None
    if opcode in (0x07, 0x27):
        width = (value >> 12) & 0x7
        return {2: "f", 3: "d", 4: "q"}.get(width)
    fmt = (value >> 25) & 0x3
    return {0: "f", 1: "d", 3: "q"}.get(fmt, "f")


def _riscv_lacking(ins: Instruction, spec: CoreSpec) -> str | None:
    m = ins.mnemonic
    ext = spec.extensions
    if m in _RAW_DIRECTIVES:
        kind = _riscv_raw_fp(ins)
        if kind is None:
            return None
        needs = "f" if kind == "f" else "d"
        if needs not in ext:
            return (f"{'FPU' if 'f' not in ext else 'double-precision'} instruction (RISC-V {kind.upper()} "
                    f"extension, hidden from the disassembler) on a core without {'an FPU' if 'f' not in ext else 'D'}")
        return None
    if (m.startswith("f") and not m.startswith("fence")) or (m.startswith("csr") and _RV_FP_CSRS.search(ins.operands)):
        double = m in ("fld", "fsd", "c.fld", "c.fsd", "c.fldsp", "c.fsdsp") or "d" in m.split(".")[1:]
        if "f" not in ext:
            return "FPU instruction (RISC-V F/D extension) on a core without an FPU"
        if double and "d" not in ext:
            return "double-precision instruction (RISC-V D extension) on a single-precision FPU"
        return None
    if m in _RV_M and "m" not in ext:
        return "multiply/divide instruction (RISC-V M extension) on a core without M"
    if (m.startswith("amo") or m.startswith("lr.") or m.startswith("sc.")) and "a" not in ext:
        return "atomic instruction (RISC-V A extension) on a core without A"
    if ins.size == 2 and "c" not in ext:
        return "compressed instruction (RISC-V C extension) on a core without C"
    return None


def is_fpu_instruction(ins: Instruction, arch: str) -> bool:
    if arch == "avr":
        return False  # no AVR has an FPU; fmul* are integer instructions
    if arch == "arm":
        return not ins.mnemonic.startswith(".") and _is_arm_fpu(ins)
    if ins.mnemonic in _RAW_DIRECTIVES:
        return _riscv_raw_fp(ins) is not None
    m = ins.mnemonic
    return (m.startswith("f") and not m.startswith("fence")) or (
        m.startswith("csr") and bool(_RV_FP_CSRS.search(ins.operands)))
