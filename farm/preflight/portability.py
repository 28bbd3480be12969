"""Static portability checks of a firmware ELF against the core it is meant for.

Run on every ELF before it is flashed (``farm.measure.job``) and by ``farm portability``.
Symbols come from pyelftools, instructions from the toolchain's own disassembler
(``arm-none-eabi-objdump -d`` / ``riscv64-unknown-elf-objdump -d``); nothing here
parses ELF structures by hand.

Rules (a broken rule is a :class:`Violation` naming the function, the address
and the instruction or helper):

* **No instruction the declared core lacks**, anywhere in the ELF: FPU (VFP)
  instructions on an FPU-less Arm core, double-precision ones on a single-precision
  FPU, DSP/SIMD instructions (SMLAD, SMLABB, SXTB16, QADD, SADD16, ...) on a core
  without the DSP extension, 32-bit Thumb-2 and hardware divide on Armv6-M; F/D
  instructions on a RISC-V core without an FPU (also when hidden from the
  disassembler as ``.word``), and M/A/C instructions on a core without that extension.
* **int8 builds are float-free**: no FPU instruction in any function reachable
  from the inference entry (``model_invoke``), and no call path from it to a
  soft-float helper (``__aeabi_fmul``, ``__addsf3``, ``__mulsf3``, ``__floatsisf``, ...).

Facts reported alongside: whether the inference path is float-free, the ELF's
float ABI, and for soft-float builds the soft-float helper **call sites**
reachable from ``model_invoke`` and which helpers they call. That number is a
static count of call sites; how many calls one inference actually makes is
*measured* on an emulated board by :func:`count_softfloat_calls` (QEMU's
execution trace), because the call sites sit inside loops.

The call graph follows direct branches (calls and tail calls), function
addresses loaded from literal pools (Arm) and annotated address computations
(RISC-V); indirect calls through a register are listed in
``PortabilityReport.indirect_calls`` as not followed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from farm.config.inventory import CORES, Core

ENTRY = "model_invoke"
#: variants whose inference must contain no floating point at all
FLOAT_FREE_VARIANTS = frozenset({"int8"})
OBJDUMP = {"arm": "arm-none-eabi-objdump", "riscv": "riscv64-unknown-elf-objdump"}

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
)


def is_softfloat_helper(name: str) -> bool:
    """True for a compiler-runtime soft-float routine (Arm RTABI or libgcc name)."""
    return bool(_SOFTFLOAT.match(name))


# --------------------------------------------------------------------------- instruction sets

_ARM_CONDS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al")
_ARM_BRANCH = re.compile(r"^(?:b|bl|blx|bx)(?:%s)?(?:\.[nw])?$|^cbn?z$" % "|".join(_ARM_CONDS))
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

_RV_BRANCH = frozenset(
    {"j", "jal", "jr", "jalr", "call", "tail", "beq", "bne", "blt", "bge", "bltu", "bgeu",
     "beqz", "bnez", "blez", "bgez", "bltz", "bgtz", "bgt", "ble", "bgtu", "bleu"}
)  # fmt: skip
_RV_M = frozenset({"mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"})
_RV_FP_OPCODES = {0x07: "FP load", 0x27: "FP store", 0x43: "fmadd", 0x47: "fmsub", 0x4B: "fnmsub",
                  0x4F: "fnmadd", 0x53: "FP arithmetic"}
_RV_FP_CSRS = re.compile(r"\b(?:fflags|frm|fcsr)\b")
_RAW_DIRECTIVES = frozenset({".word", ".4byte", ".insn", ".2byte", ".short", ".inst", ".inst.w", ".inst.n"})
_ANNOTATION = re.compile(r"([0-9a-f]+) <([^>]+)>")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Violation:
    function: str
    address: int
    instruction_or_helper: str
    reason: str

    @property
    def sentence(self) -> str:
        return f"{self.instruction_or_helper} at 0x{self.address:08x} in {self.function}: {self.reason}"


@dataclass(frozen=True)
class SoftFloatCall:
    function: str  # the caller
    address: int  # of the call instruction
    helper: str


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int  # bytes of the encoding
    mnemonic: str
    operands: str
    function: str

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.operands}".strip()


@dataclass
class PortabilityReport:
    elf: Path
    arch: str  # "arm" | "riscv"
    core: str
    fpu: str
    dsp: bool
    variant: str
    entry: str
    elf_float_abi: str  # "hard" | "soft" (Arm EABI flags; RISC-V: soft | single | double)
    reachable: list[str]  # functions reachable from the entry (soft-float helpers excluded)
    fpu_instructions: list[Violation]  # FPU instructions on the inference path (facts, not all violations)
    softfloat_calls: list[SoftFloatCall]  # soft-float helper call sites on the inference path
    indirect_calls: list[tuple[str, int, str]]  # (function, address, instruction): not followed
    violations: list[Violation] = field(default_factory=list)
    #: soft-float calls per inference measured on a board (count_softfloat_calls); None: not measured
    softfloat_calls_measured: dict[str, float] | None = None

    @property
    def portable(self) -> bool:
        return not self.violations

    @property
    def float_free(self) -> bool:
        """No FPU instruction and no soft-float call on the inference path."""
        return not self.fpu_instructions and not self.softfloat_calls

    @property
    def softfloat_call_sites(self) -> int:
        return len(self.softfloat_calls)

    @property
    def softfloat_helpers(self) -> list[str]:
        return sorted({c.helper for c in self.softfloat_calls})

    @property
    def softfloat_calls_per_inference(self) -> float | None:
        """Measured on the board (see count_softfloat_calls); None when not measured."""
        if self.softfloat_calls_measured is None:
            return None
        return float(sum(self.softfloat_calls_measured.values()))

    @property
    def float_kind(self) -> str:
        """float-free | soft-float | hard-float | hard+soft-float (of the inference path)."""
        if self.float_free:
            return "float-free"
        if self.fpu_instructions and self.softfloat_calls:
            return "hard+soft-float"
        return "hard-float" if self.fpu_instructions else "soft-float"

    def describe_core(self) -> str:
        return f"{self.core} (fpu {self.fpu}, {'with' if self.dsp else 'no'} DSP)"

    def summary(self) -> str:
        """One sentence: why it is not portable, or what it needs from the core."""
        if self.violations:
            first = self.violations[0]
            text = f"not portable to {self.describe_core()}: {first.sentence}"
            rest = self.violations[1:]
            if rest:
                where = Counter(v.function for v in rest)
                spots = ", ".join(f"{n} in {fn}" for fn, n in where.most_common(4))
                more = "" if len(where) <= 4 else f", ... ({len(where)} functions)"
                text += f" (and {len(rest)} more: {spots}{more})"
            return text
        if self.float_free:
            return f"float-free inference path ({len(self.reachable)} functions from {self.entry})"
        parts = [self.float_kind]
        if self.softfloat_calls:
            parts.append(f"{self.softfloat_call_sites} soft-float call sites on the inference path "
                         f"({', '.join(self.softfloat_helpers)})")
        if self.softfloat_calls_per_inference is not None:
            parts.append(f"{self.softfloat_calls_per_inference:.0f} soft-float calls per inference (measured)")
        if self.fpu_instructions:
            parts.append(f"{len(self.fpu_instructions)} FPU instructions on the inference path")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "elf": str(self.elf),
            "arch": self.arch,
            "core": self.core,
            "fpu": self.fpu,
            "dsp": self.dsp,
            "variant": self.variant,
            "portable": self.portable,
            "float_free": self.float_free,
            "float_kind": self.float_kind,
            "elf_float_abi": self.elf_float_abi,
            "fpu_instructions_on_inference_path": len(self.fpu_instructions),
            "softfloat_call_sites": self.softfloat_call_sites,
            "softfloat_helpers": self.softfloat_helpers,
            "softfloat_calls_per_inference": self.softfloat_calls_per_inference,
            "softfloat_calls_per_inference_by_helper": self.softfloat_calls_measured,
            "softfloat_calls_source": "measured (QEMU execution trace)" if self.softfloat_calls_measured is not None
            else "not measured (softfloat_call_sites is a static count)",
            "indirect_calls_not_followed": len(self.indirect_calls),
            "reachable_functions": self.reachable,
            "violations": [asdict(v) | {"sentence": v.sentence} for v in self.violations],
            "summary": self.summary(),
        }


class PortabilityError(RuntimeError):
    """The ELF could not be analysed (no disassembler, no entry symbol, ...)."""


# --------------------------------------------------------------------------- ELF reading


@dataclass(frozen=True)
class _Function:
    start: int
    end: int
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def is_softfloat(self) -> bool:
        return any(is_softfloat_helper(n) for n in self.names)

    def helper_name(self) -> str:
        return next(n for n in self.names if is_softfloat_helper(n))


@dataclass
class ElfCode:
    """An ELF's functions (pyelftools) and their instructions (objdump)."""

    path: Path
    arch: str
    float_abi: str
    functions: list[_Function]
    instructions: list[Instruction]
    _starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._starts = [f.start for f in self.functions]
        self.by_start = {f.start: f for f in self.functions}

    def function_at(self, address: int) -> _Function | None:
        i = bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.functions[i].end:
            return self.functions[i]
        return None

    def function_named(self, name: str) -> _Function | None:
        return next((f for f in self.functions if name in f.names), None)

    def instruction_at(self, address: int) -> Instruction | None:
        return next((i for i in self.instructions if i.address == address), None)


def _elf_arch_and_functions(path: Path) -> tuple[str, str, list[_Function]]:
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        machine = elf["e_machine"]
        flags = elf["e_flags"]
        if machine == "EM_ARM":
            arch = "arm"
            float_abi = "hard" if flags & 0x400 else "soft"  # EF_ARM_ABI_FLOAT_HARD / _SOFT
        elif machine == "EM_RISCV":
            arch = "riscv"
            float_abi = {0: "soft", 2: "single", 4: "double", 6: "quad"}[flags & 0x6]  # EF_RISCV_FLOAT_ABI
        else:
            raise PortabilityError(f"{path}: {machine} ELF; the portability checks know Arm and RISC-V")
        table = elf.get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            raise PortabilityError(f"{path}: no symbol table (stripped ELF); the checks need function symbols")
        spans: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for sym in table.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or not sym.name:
                continue
            start = sym["st_value"] & ~1 if arch == "arm" else sym["st_value"]
            size = max(int(sym["st_size"]), 2)
            rank = 0 if sym["st_info"]["bind"] == "STB_GLOBAL" else 1
            spans.setdefault((start, start + size), []).append((rank, sym.name))
    merged: dict[int, _Function] = {}
    for (start, end), names in sorted(spans.items()):
        ordered = tuple(n for _, n in sorted(names))
        prev = merged.get(start)
        if prev is None:
            merged[start] = _Function(start, end, ordered)
        else:  # aliases with different sizes: keep the widest span and every name
            merged[start] = _Function(start, max(end, prev.end), prev.names + ordered)
    return arch, float_abi, sorted(merged.values(), key=lambda f: f.start)


def objdump_binary(arch: str) -> str:
    binary = OBJDUMP[arch]
    if shutil.which(binary) is None:
        raise PortabilityError(f"{binary} not found on PATH (install the Debian toolchain: make setup)")
    return binary


def read_elf_code(path: Path) -> ElfCode:
    """Disassemble every function of the ELF (one objdump run)."""
    arch, float_abi, functions = _elf_arch_and_functions(path)
    proc = subprocess.run([objdump_binary(arch), "-d", "-w", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PortabilityError(f"{OBJDUMP[arch]} failed on {path}: {proc.stderr.strip()}")
    code = ElfCode(path, arch, float_abi, functions, [])
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0].strip().endswith(":"):
            continue
        try:
            address = int(parts[0].strip()[:-1], 16)
        except ValueError:
            continue
        fn = code.function_at(address)
        if fn is None:
            continue  # data (weights, tables) that objdump decoded as code
        raw = parts[1].replace(" ", "")
        mnemonic = parts[2].strip()
        operands = "\t".join(parts[3:]).strip()
        code.instructions.append(Instruction(address, len(raw) // 2, mnemonic, operands, fn.name))
    return code


# --------------------------------------------------------------------------- the core's instruction set


@dataclass(frozen=True)
class CoreSpec:
    core: str
    arch: str  # isa family: "arm" | "riscv"
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
    """Why the core cannot execute this instruction, or None when it can."""
    return _arm_lacking(ins, spec) if spec.arch == "arm" else _riscv_lacking(ins, spec)


def _arm_base(mnemonic: str) -> str:
    base = mnemonic.split(".")[0]
    for cond in _ARM_CONDS:  # conditional forms inside IT blocks: smlabbeq -> smlabb
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
    if arch == "arm":
        return not ins.mnemonic.startswith(".") and _is_arm_fpu(ins)
    if ins.mnemonic in _RAW_DIRECTIVES:
        return _riscv_raw_fp(ins) is not None
    m = ins.mnemonic
    return (m.startswith("f") and not m.startswith("fence")) or (
        m.startswith("csr") and bool(_RV_FP_CSRS.search(ins.operands)))


# --------------------------------------------------------------------------- call graph


def _is_branch(ins: Instruction, arch: str) -> bool:
    if arch == "arm":
        return bool(_ARM_BRANCH.match(ins.mnemonic))
    return ins.mnemonic in _RV_BRANCH or ins.mnemonic.startswith("c.j")


def _is_indirect_call(ins: Instruction, arch: str) -> bool:
    if arch == "arm":
        return ins.mnemonic.startswith("blx") and not _ANNOTATION.search(ins.operands)
    if ins.mnemonic in ("jalr", "jr") and not _ANNOTATION.search(ins.operands):
        return not (ins.mnemonic == "jr" and ins.operands.strip() == "ra")
    return False


@dataclass
class _Edges:
    calls: dict[str, set[int]] = field(default_factory=dict)  # function -> target function starts
    helper_calls: dict[str, list[SoftFloatCall]] = field(default_factory=dict)
    indirect: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    fpu: dict[str, list[Instruction]] = field(default_factory=dict)


def _edges(code: ElfCode) -> _Edges:
    edges = _Edges()
    for ins in code.instructions:
        fn = code.function_at(ins.address)
        if fn is None:
            continue
        calls = edges.calls.setdefault(fn.name, set())
        if is_fpu_instruction(ins, code.arch):
            edges.fpu.setdefault(fn.name, []).append(ins)
        targets: list[tuple[int, bool]] = []  # (address, is a branch)
        branch = _is_branch(ins, code.arch)
        for match in _ANNOTATION.finditer(ins.operands):
            targets.append((int(match.group(1), 16), branch))
        if code.arch == "arm" and ins.mnemonic == ".word":  # literal pool: a function's address?
            try:
                targets.append((int(ins.operands.split()[0], 16) & ~1, False))
            except (ValueError, IndexError):
                pass
        if not targets and _is_indirect_call(ins, code.arch):
            edges.indirect.setdefault(fn.name, []).append((fn.name, ins.address, ins.text))
        for address, is_branch in targets:
            target = code.function_at(address) if is_branch else code.by_start.get(address)
            if target is None or target is fn:
                continue
            if target.is_softfloat:
                if is_branch:
                    helper = target.helper_name()
                    edges.helper_calls.setdefault(fn.name, []).append(SoftFloatCall(fn.name, ins.address, helper))
                continue
            calls.add(target.start)
    return edges


def _reachable(code: ElfCode, edges: _Edges, entry: str) -> list[str]:
    start = code.function_named(entry)
    if start is None:
        raise PortabilityError(f"{code.path}: no function {entry!r} in the ELF (is it a tinyfarm firmware?)")
    seen = {start.name}
    order = [start.name]
    queue = deque([start.name])
    while queue:
        name = queue.popleft()
        for target in sorted(edges.calls.get(name, ())):
            callee = code.by_start[target].name
            if callee not in seen:
                seen.add(callee)
                order.append(callee)
                queue.append(callee)
    return order


def inference_functions(code: ElfCode, entry: str = ENTRY) -> list[str]:
    """The functions reachable from `entry` (model_invoke) by direct calls, entry first."""
    return _reachable(code, _edges(code), entry)


# --------------------------------------------------------------------------- the check


def check_elf(elf: Path, *, core: str, fpu: str, dsp: bool, variant: str, entry: str = ENTRY,
              code: ElfCode | None = None) -> PortabilityReport:
    """Check one ELF against the core it is meant for; see the module docstring for the rules."""
    spec = CoreSpec.of(core, fpu, dsp)
    code = code or read_elf_code(elf)
    if code.arch != spec.arch:
        raise PortabilityError(f"{elf}: a {code.arch} ELF cannot run on {spec.core} ({spec.arch})")
    edges = _edges(code)
    reachable = _reachable(code, edges, entry)
    on_path = set(reachable)
    fpu_facts = [Violation(i.function, i.address, i.text, "FPU instruction on the inference path")
                 for name in reachable for i in edges.fpu.get(name, [])]
    softfloat = [c for name in reachable for c in edges.helper_calls.get(name, [])]
    indirect = [c for name in reachable for c in edges.indirect.get(name, [])]
    violations = [Violation(i.function, i.address, i.text, reason)
                  for i in code.instructions if (reason := lacking(i, spec)) is not None]
    if variant in FLOAT_FREE_VARIANTS:
        already = {v.address for v in violations}
        violations += [Violation(v.function, v.address, v.instruction_or_helper,
                                 f"FPU instruction reachable from {entry} in an {variant} build (must be float-free)")
                       for v in fpu_facts if v.address not in already]
        violations += [Violation(c.function, c.address, f"call to {c.helper}",
                                 f"soft-float helper reachable from {entry} in an {variant} build (must be float-free)")
                       for c in softfloat]
    violations.sort(key=lambda v: (v.function not in on_path, v.address))
    return PortabilityReport(elf=elf, arch=code.arch, core=spec.core, fpu=spec.fpu, dsp=spec.dsp, variant=variant,
                             entry=entry, elf_float_abi=code.float_abi, reachable=reachable,
                             fpu_instructions=fpu_facts, softfloat_calls=softfloat, indirect_calls=indirect,
                             violations=violations)


def check_device(elf: Path, device: Any, variant: str) -> PortabilityReport:
    """:func:`check_elf` with the core, FPU and DSP an inventory device declares."""
    return check_elf(elf, core=str(device.core), fpu=str(device.fpu), dsp=bool(device.dsp), variant=variant)


def lacking_instruction_at(elf: Path, address: int, *, core: str, fpu: str, dsp: bool) -> str | None:
    """Why the instruction at ``address`` cannot run on the core (None: it can, or unknown).

    Used to tell a fault that means "this build is not portable to this core" (an
    FPU or DSP instruction the core lacks) from a fault of a program that is wrong
    anywhere (a deliberate ``udf``, a bad pointer)."""
    try:
        code = read_elf_code(elf)
    except PortabilityError:
        return None
    ins = code.instruction_at(address)
    if ins is None:
        return None
    reason = lacking(ins, CoreSpec.of(core, fpu, dsp))
    return f"{ins.text}: {reason}" if reason else None


# --------------------------------------------------------------------------- measured soft-float calls


def softfloat_entry_points(elf: Path) -> dict[int, str]:
    """Entry address -> helper name of every soft-float helper in the ELF."""
    _, _, functions = _elf_arch_and_functions(elf)
    return {f.start: f.helper_name() for f in functions if f.is_softfloat}


_TRACE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
#: the return-address register in QEMU's CPU dump (-d cpu)
_RETURN_ADDRESS = {"arm": re.compile(r"\bR14=([0-9a-f]{8})"), "riscv": re.compile(r"\bx1/ra\s+([0-9a-f]{8})")}
#: the general-purpose registers of the dump (CSRs such as mip may change while nothing executes)
_GPRS = {"arm": re.compile(r"\bR\d\d=[0-9a-f]{8}"), "riscv": re.compile(r"\bx\d+/\w+\s+[0-9a-f]{8}")}


def _trace_blocks(path: Path) -> Iterable[tuple[int, str]]:
    """(pc, the block's text) of each TB entry logged by ``-d exec,cpu``."""
    pc: int | None = None
    lines: list[str] = []
    with path.open(errors="replace") as fh:
        for line in fh:
            match = _TRACE.match(line)
            if match:
                if pc is not None:
                    yield pc, "".join(lines)
                pc, lines = int(match.group(1), 16), []
            elif pc is not None:
                lines.append(line)
    if pc is not None:
        yield pc, "".join(lines)


def count_softfloat_calls(device: Any, elf: Path, sample: bytes, *, inferences: int = 2,
                          timeout: float = 30.0) -> dict[str, float]:
    """Soft-float helper calls per inference, **measured** on an emulated board.

    QEMU runs the ELF with its execution trace and a CPU dump at each traced block
    (``-d exec,cpu,nochain``), filtered (``-dfilter``) to the entry addresses of the
    soft-float helpers and of ``model_invoke``: every call enters a helper at its
    first instruction. A call whose return address lies in another helper (e.g.
    ``__aeabi_fcmplt`` calling ``__aeabi_cfcmple``) is part of the outer call and
    not counted; a block logged twice with the very same registers (QEMU re-enters
    a block when its instruction budget runs out under -icount) counts once.
    Counted over ``inferences`` runs of ``sample``; returns helper -> calls per
    inference (only helpers that were called).
    """
    from farm.board.qemu import EmulatorSpec, run_traced

    if getattr(device, "emulator", None) is None:
        raise PortabilityError(f"device {device.name}: soft-float calls are measured on emulated boards only")
    code = read_elf_code(elf)
    helpers = {f.start: f.helper_name() for f in code.functions if f.is_softfloat}
    entry = code.function_named(ENTRY)
    if entry is None:
        raise PortabilityError(f"{elf}: no function {ENTRY!r}")
    if not helpers:
        return {}
    watched = {**helpers, entry.start: ENTRY}
    ranges = ",".join(f"0x{a:x}+0x2" for a in sorted(watched))
    spec = EmulatorSpec(device.emulator.machine, device.emulator.icount_shift)
    return_address = _RETURN_ADDRESS[code.arch]
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="farm-trace-") as tmp:
        trace = Path(tmp) / "exec.log"
        run_traced(spec, elf, sample, inferences, ("-d", "exec,cpu,nochain", "-dfilter", ranges, "-D", str(trace)),
                   timeout)
        previous: tuple[int, list[str]] | None = None
        for pc, block in _trace_blocks(trace):
            state = (pc, _GPRS[code.arch].findall(block))
            if state == previous:
                continue  # the same block re-entered before it ran an instruction
            previous = state
            name = watched.get(pc)
            match = return_address.search(block)
            if name is None or match is None:
                continue
            caller = code.function_at(int(match.group(1), 16) & ~1)
            if name != ENTRY and caller is not None and caller.is_softfloat:
                continue  # a helper's own call of another helper
            counts[name] += 1
    invocations = counts.pop(ENTRY, 0)
    if invocations != inferences:
        raise PortabilityError(f"execution trace saw {invocations} calls of {ENTRY}, expected {inferences}")
    return {name: n / inferences for name, n in sorted(counts.items())}
