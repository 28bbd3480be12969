"""The stack a firmware needs: a static worst-case bound, and the reservation sized from it.

The bound is computed over the call graph of the linked ELF (farm.preflight.call_graph, on the
toolchain's disassembly, farm.preflight.disassembly; handed in by the caller, since the build
stage sits below preflight) with each function's frame from GCC's
``-fstack-usage`` files (``.su``: ``file:line:col:name <bytes> static|dynamic[,bounded]``):

* depth(f) = frame(f) + the deepest of its callees (direct calls, tail calls, the soft-float
  helpers, a function whose address it takes); an indirect call in f may reach the functions
  whose address f takes (a table of its own), else those its callers take (a pointer passed
  down: main hands model_invoke / null_invoke to the timed loop). A function pointer stored
  in data by another function is not followed;
* the root is the ELF's entry (Reset_Handler on Cortex-M, _start on RV32): the whole firmware,
  boot, protocol and inference (the inference's own part, model_invoke and its callees, is
  reported too);
* interrupts and faults: on Cortex-M an exception stacks its frame on the running stack (8
  words, 26 with the FPU's lazy context on a hard-float build, plus 4 bytes of alignment)
  and its handler (every function of the vector table ``g_vectors``) runs on top: both are
  added to the deepest path. On RV32 the trap entry takes a fresh stack from __stack_top__
  (startup_riscv_entry.S): it needs its own depth from the top, not on top of the path.

A function without a ``.su`` entry (the C library's memcpy/memset, libgcc, the harness's
assembly) gets its frame from its disassembly: the sum of every immediate decrement of the
stack pointer (push, vpush, sub sp, pre-indexed stores; ``addi sp,sp,-N``). The bound is not
computable -- and the firmware keeps the fixed reservation of its linker script, with the
reason -- on recursion, an indirect call with no address-taken function to go to, a frame GCC
calls ``dynamic`` (alloca, VLA), or a stack pointer set from a register.

The reservation (:func:`reservation`) is the bound plus :data:`MARGIN_BYTES`, rounded up to
:data:`ALIGN` bytes; farm.build.firmware links it as ``__stack_size``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: bytes added to the static bound in the reservation (what the bound cannot see: a debugger's
#: or semihosting's frames, a few words of slack)
MARGIN_BYTES = 128
#: the reservation is rounded up to this (the RV32 psABI's 16-byte stack alignment; Arm AAPCS
#: needs 8)
ALIGN = {"arm": 8, "riscv": 16}
#: the fixed reservation of the linker scripts (armv7m_sections.ld, sifive_e.ld), kept when
#: the bound is not computable
FIXED_BYTES = {"arm": 0x2000, "riscv": 0x800}
#: the inference entry (farm.preflight.call_graph.ENTRY)
INFERENCE_ENTRY = "model_invoke"
#: the Cortex-M vector table of the harness (startup_cortexm.c)
VECTOR_TABLE = "g_vectors"
#: bytes a Cortex-M exception stacks: 8 words; 26 with the FP context (hard-float: the harness
#: enables the FPU, lazy stacking reserves the space); +4 for the 8-byte frame alignment
ARM_EXCEPTION_FRAME = {"soft": 32 + 4, "hard": 104 + 4}


@dataclass(frozen=True)
class SuEntry:
    """One function of a ``.su`` file: its frame in bytes and GCC's qualifier."""

    name: str
    bytes: int
    qualifier: str  # "static" | "dynamic" | "dynamic,bounded"
    source: str  # file:line:col

    @property
    def bounded(self) -> bool:
        return self.qualifier != "dynamic"


_SU_LINE = re.compile(r"^(?P<where>.*):(?P<name>[^:\s]+)\s+(?P<bytes>\d+)\s+(?P<qual>[a-z,]+)\s*$")


def parse_su(text: str) -> list[SuEntry]:
    """The entries of one ``.su`` file (GCC -fstack-usage)."""
    entries = []
    for line in text.splitlines():
        m = _SU_LINE.match(line.strip())
        if m:
            entries.append(SuEntry(m["name"], int(m["bytes"]), m["qual"], m["where"]))
    return entries


def read_su_files(paths: Iterable[Path]) -> dict[str, SuEntry]:
    """Every function of the ``.su`` files by name; a name in several files (two static
    functions) keeps the largest frame."""
    frames: dict[str, SuEntry] = {}
    for path in paths:
        for entry in parse_su(path.read_text(errors="replace")):
            prev = frames.get(entry.name)
            if prev is None or (entry.bytes, not entry.bounded) > (prev.bytes, not prev.bounded):
                frames[entry.name] = entry
    return frames


def su_files(build_dir: Path) -> list[Path]:
    """The ``.su`` files a PlatformIO build left (one per object)."""
    return sorted(build_dir.rglob("*.su"))


@dataclass
class StackBound:
    """The static worst case, in bytes; ``bytes`` None when it is not computable (``reason``)."""

    arch: str
    bytes: int | None
    inference_bytes: int | None = None  # model_invoke and its callees alone
    handler_bytes: int | None = None  # what a fault/interrupt adds (Arm) or needs from the top (RV32)
    path: list[str] = field(default_factory=list)  # the deepest chain from the entry
    reason: str | None = None
    #: frames not from a .su file: function -> bytes from its disassembly
    from_disassembly: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _NotComputable(Exception):
    pass


# --------------------------------------------------------------------------- frames from disassembly

_ARM_REGS = {f"r{i}": i for i in range(16)} | {"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15}
_IMM = re.compile(r"#(-?(?:0x[0-9a-f]+|\d+))")


def _reg_count(reglist: str) -> tuple[int, int]:
    """(registers, bytes each) of an Arm register list ``{r4, r5, lr}`` / ``{d8-d15}``."""
    inner = reglist[reglist.find("{") + 1 : reglist.find("}")]
    count, size = 0, 4
    for item in (p.strip() for p in inner.split(",") if p.strip()):
        if item[0] == "d":
            size = 8
        if "-" in item:
            lo, hi = item.split("-")
            count += int(hi.strip()[1:]) - int(lo.strip()[1:]) + 1
        else:
            count += 1
    return count, size


def _arm_frame(instructions: list[Any]) -> int:
    total = 0
    for ins in instructions:
        mn = ins.mnemonic.split(".")[0]
        ops = ins.operands.split("@")[0].strip()
        first = ops.split(",")[0].strip()
        if mn in ("push", "vpush") or (mn in ("stmdb", "stmfd", "vstmdb") and first == "sp!"):
            n, size = _reg_count(ops)
            total += n * size
        elif mn in ("sub", "subw", "subs") and first == "sp":
            imm = _IMM.search(ops)
            if imm is None:  # sub sp, rX: a frame of run-time size
                raise _NotComputable(f"{ins.function} subtracts a register from sp ({ins.text})")
            total += int(imm.group(1), 0)
        elif mn.startswith(("str", "vstr")) and re.search(r"\[sp, #-\d+\]!", ops):
            total += int(re.search(r"\[sp, #-(\d+)\]!", ops).group(1))  # type: ignore[union-attr]
        elif mn in ("add", "addw", "adds") and first == "sp" and _IMM.search(ops):
            continue  # the epilogue
        elif mn in ("pop", "vpop", "ldmia", "ldmfd", "ldm", "vldmia") or mn.startswith(("ldr", "vldr")):
            if first == "sp":
                raise _NotComputable(f"{ins.function} loads sp ({ins.text})")
            continue
        elif first == "sp" and mn not in ("cmp", "cmn", "tst", "teq") and not mn.startswith(("st", "b")):
            raise _NotComputable(f"{ins.function} sets sp from a register ({ins.text})")
        elif mn == "msr" and first in ("msp", "psp"):
            raise _NotComputable(f"{ins.function} sets the stack pointer ({ins.text})")
    return total


_RV_STORES = ("sb", "sh", "sw", "sd", "fsw", "fsd", "c.sw", "c.swsp", "c.fsw", "c.fswsp")


def _riscv_frame(instructions: list[Any], stack_top: int | None) -> tuple[int, bool]:
    """(frame bytes, whether the function resets sp to __stack_top__: a fresh stack)."""
    total, reset, pending = 0, False, None
    for ins in instructions:
        ops = [p.strip() for p in ins.operands.split("#")[0].split(",")]
        if not ops or ops[0] != "sp" or ins.mnemonic in _RV_STORES or ins.mnemonic.startswith("b"):
            if pending is not None:
                raise _NotComputable(f"{pending.function} sets sp from an address ({pending.text})")
            continue
        if ins.mnemonic in ("auipc", "lui"):
            pending = ins  # the first half of `la sp, symbol`
            continue
        if pending is not None:
            target = re.search(r"#\s*([0-9a-f]+)\b", ins.operands)
            if target is not None and stack_top is not None and int(target.group(1), 16) == stack_top:
                reset, pending = True, None
                continue
            raise _NotComputable(f"{ins.function} sets sp to another address ({ins.text})")
        if ins.mnemonic in ("addi", "add", "c.addi", "c.addi16sp") and len(ops) >= 2 and ops[-2] in ("sp",) \
                and re.fullmatch(r"-?\d+", ops[-1]):
            value = int(ops[-1])
            if value < 0:
                total += -value
            continue
        raise _NotComputable(f"{ins.function} sets sp from a register ({ins.text})")
    if pending is not None:
        raise _NotComputable(f"{pending.function} sets sp from an address ({pending.text})")
    return total, reset


# --------------------------------------------------------------------------- the bound


def _su_name(name: str, frames: Mapping[str, SuEntry]) -> SuEntry | None:
    """The .su entry of an ELF function: by name, or by a GCC clone's name without its number
    (ELF ``timed_loop.constprop.0`` is ``timed_loop.constprop`` in the .su file)."""
    if name in frames:
        return frames[name]
    base = re.sub(r"\.\d+$", "", name)
    return frames.get(base)


#: objdump's annotation of an address operand: ``1234 <symbol>``
_ANNOTATION = re.compile(r"([0-9a-f]+) <([^>]+)>")


def _is_rv_branch(mnemonic: str) -> bool:
    """A RISC-V jump, call or branch (its annotated target is a call/branch, not an address taken)."""
    return mnemonic.startswith(("b", "j", "c.j", "c.b")) or mnemonic in ("call", "tail")


def _address_taken(code: Any) -> dict[str, set[int]]:
    """Per function: the starts of the functions whose address it takes (Arm literal-pool words
    with the Thumb bit set, annotated address computations that are not branches: RISC-V ``la``)."""
    by_function: dict[str, set[int]] = {}
    for ins in code.instructions:
        taken = by_function.setdefault(ins.function, set())
        if code.arch == "arm" and ins.mnemonic == ".word":
            try:
                value = int(ins.operands.split()[0], 16)
            except (ValueError, IndexError):
                continue
            if value & 1 and (value & ~1) in code.by_start:
                taken.add(value & ~1)
        elif code.arch == "riscv" and not _is_rv_branch(ins.mnemonic):
            for match in _ANNOTATION.finditer(ins.operands):
                address = int(match.group(1), 16)
                if address in code.by_start and "+" not in match.group(2):
                    taken.add(address)
    return by_function


def stack_bound(elf: Path, frames: Mapping[str, SuEntry], code: Any, graph: Any) -> StackBound:
    """The static worst-case stack of the firmware ``elf`` with the ``.su`` frames ``frames``,
    over its disassembly ``code`` (farm.preflight.disassembly.read_elf_code) and call graph
    ``graph`` (farm.preflight.call_graph.call_graph): the caller hands them in, the build stage
    sits below preflight (farm.measure.job.elf_code_and_graph)."""
    from farm.build.elf import entry_point, object_words, symbol_address

    arch = code.arch
    bound = StackBound(arch, None)
    if arch not in ("arm", "riscv"):
        bound.reason = f"no stack analysis for {arch}"
        return bound
    by_name: dict[str, list[Any]] = {}
    for ins in code.instructions:
        by_name.setdefault(ins.function, []).append(ins)
    taken = _address_taken(code)
    callers: dict[str, set[str]] = {}
    for caller, starts in graph.calls.items():
        for start in starts:
            callers.setdefault(code.by_start[start].name, set()).add(caller)
    stack_top = symbol_address(elf, "__stack_top__")

    def callees(name: str) -> list[str]:
        targets = set(graph.calls.get(name, ()))
        for call in graph.helper_calls.get(name, ()):
            helper = code.function_named(call.helper)
            if helper is not None:
                targets.add(helper.start)
        if graph.indirect.get(name):
            # a table of its own (already its edges), else what its callers pass it: the
            # functions whose address they take (main hands model_invoke to the timed loop)
            reach = taken.get(name) or set().union(*(taken.get(c, set()) for c in callers.get(name, ())))
            if not reach:
                raise _NotComputable(f"{name} makes an indirect call ({graph.indirect[name][0][2]}) and neither "
                                     "it nor its callers take a function's address")
            targets |= reach
        return sorted(code.by_start[t].name for t in targets if code.by_start[t].name != name)

    resets: set[str] = set()

    def check_self_call(name: str) -> None:
        """A call of a function by itself (the call graph leaves such edges out)."""
        fn = code.function_named(name)
        calls = ("bl", "blx") if arch == "arm" else ("jal", "call", "jalr")
        for ins in by_name.get(name, []):
            if ins.mnemonic.split(".")[0] in calls and fn is not None:
                m = _ANNOTATION.search(ins.operands)
                if m and int(m.group(1), 16) == fn.start:
                    raise _NotComputable(f"recursion: {name} -> {name}")

    def frame(name: str) -> int:
        check_self_call(name)
        entry = _su_name(name, frames)
        if entry is not None:
            if not entry.bounded:
                raise _NotComputable(f"{name} has a frame of run-time size (GCC: {entry.qualifier}, {entry.source})")
            return entry.bytes
        instructions = by_name.get(name, [])
        if arch == "arm":
            size = _arm_frame(instructions)
        else:
            size, reset = _riscv_frame(instructions, stack_top)
            if reset:
                resets.add(name)
        bound.from_disassembly[name] = size
        return size

    depth: dict[str, tuple[int, list[str]]] = {}
    active: list[str] = []

    def walk(name: str) -> tuple[int, list[str]]:
        if name in depth:
            return depth[name]
        if name in active:
            cycle = active[active.index(name):] + [name]
            raise _NotComputable(f"recursion: {' -> '.join(cycle)}")
        active.append(name)
        own = frame(name)
        best: tuple[int, list[str]] = (0, [])
        for callee in callees(name):
            sub = walk(callee)
            if callee in resets:
                fresh[callee] = sub  # a fresh stack from __stack_top__: not on top of this one
                continue
            if sub[0] > best[0]:
                best = sub
        active.pop()
        depth[name] = (own + best[0], [name] + best[1])
        return depth[name]

    fresh: dict[str, tuple[int, list[str]]] = {}
    try:
        root = code.function_at(entry_point(elf))
        if root is None:
            raise _NotComputable(f"no function at the ELF's entry point 0x{entry_point(elf):x}")
        total, path = walk(root.name)
        if root.name in resets:
            fresh[root.name] = (total, path)
        infer = code.function_named(INFERENCE_ENTRY)
        bound.inference_bytes = walk(infer.name)[0] if infer is not None else None
        handler = 0
        if arch == "arm":
            vectors = object_words(elf, VECTOR_TABLE)
            if vectors is None:
                raise _NotComputable(f"no vector table {VECTOR_TABLE!r} in the ELF (its handlers' stack unknown)")
            handlers = {code.function_at(w & ~1) for w in vectors[2:] if w}
            deepest = max((walk(h.name)[0] for h in handlers if h is not None), default=0)
            handler = ARM_EXCEPTION_FRAME[code.float_abi] + deepest
            total += handler
        else:
            handler = max((v[0] for k, v in fresh.items() if k != root.name), default=0)
            total = max(total, handler)
        bound.handler_bytes = handler
        bound.bytes, bound.path = total, path
    except _NotComputable as exc:
        bound.reason = str(exc)
        bound.bytes = None
    return bound


def reservation(bound: StackBound) -> tuple[int, str]:
    """(the stack to reserve in bytes, how it was sized): the bound plus the margin, rounded up
    to the alignment; the linker script's fixed reservation when the bound is not computable."""
    align = ALIGN[bound.arch]
    if bound.bytes is None:
        return FIXED_BYTES[bound.arch], f"fixed {FIXED_BYTES[bound.arch]} B (bound not computable: {bound.reason})"
    size = -(-(bound.bytes + MARGIN_BYTES) // align) * align
    return size, f"static bound {bound.bytes} B + {MARGIN_BYTES} B margin, rounded up to {align} B"
