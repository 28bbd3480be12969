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
*measured* on an emulated board (farm.measure.softfloat_calls, from QEMU's
execution trace), because the call sites sit inside loops.

The parts live in their own modules: the instructions (farm.preflight.disassembly,
over the one ELF reader farm.build.elf), what each core executes
(farm.preflight.isa_rules), the call graph (farm.preflight.call_graph: direct
branches, literal-pool and annotated function addresses; indirect calls through a
register are listed in ``PortabilityReport.indirect_calls`` as not followed), and
the measured soft-float calls (farm.measure.softfloat_calls).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from farm.preflight.call_graph import ENTRY, SoftFloatCall, call_graph, reachable
from farm.preflight.disassembly import ElfCode, PortabilityError, read_elf_code
from farm.preflight.isa_rules import CoreSpec, lacking

#: variants whose inference must contain no floating point at all; every other variant computes
#: in float somewhere (float32, int8-weights; dynamic: the per-batch input quantization and the
#: float rescale and bias of its hybrid ops): soft-float on an FPU-less core, hard-float on an FPU core
FLOAT_FREE_VARIANTS = frozenset({"int8"})


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


# --------------------------------------------------------------------------- the check


def check_elf(elf: Path, *, core: str, fpu: str, dsp: bool, variant: str, entry: str = ENTRY,
              code: ElfCode | None = None) -> PortabilityReport:
    """Check one ELF against the core it is meant for; see the module docstring for the rules."""
    spec = CoreSpec.of(core, fpu, dsp)
    code = code or read_elf_code(elf)
    if code.arch != spec.arch:
        raise PortabilityError(f"{elf}: a {code.arch} ELF cannot run on {spec.core} ({spec.arch})")
    edges = call_graph(code)
    on_path_names = reachable(code, edges, entry)
    on_path = set(on_path_names)
    fpu_facts = [Violation(i.function, i.address, i.text, "FPU instruction on the inference path")
                 for name in on_path_names for i in edges.fpu.get(name, [])]
    softfloat = [c for name in on_path_names for c in edges.helper_calls.get(name, [])]
    indirect = [c for name in on_path_names for c in edges.indirect.get(name, [])]
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
                             entry=entry, elf_float_abi=code.float_abi, reachable=on_path_names,
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
