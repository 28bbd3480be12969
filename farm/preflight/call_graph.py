"""The call graph of a disassembled ELF, and what lies on the inference path.

Edges follow direct branches (calls and tail calls), function addresses loaded
from literal pools (Arm) and annotated address computations (RISC-V). A branch
into a soft-float helper is recorded as a :class:`SoftFloatCall` (the helper is
not followed). Indirect calls through a register cannot be followed: they are
listed. :func:`reachable` walks the graph breadth-first from the inference entry
(``model_invoke``).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from farm.preflight.disassembly import ElfCode, Instruction, PortabilityError
from farm.preflight.isa_rules import ARM_CONDS, is_fpu_instruction, softfloat_helper

#: the inference entry of every tinyfarm firmware
ENTRY = "model_invoke"

_ARM_BRANCH = re.compile(r"^(?:b|bl|blx|bx)(?:%s)?(?:\.[nw])?$|^cbn?z$" % "|".join(ARM_CONDS))
_RV_BRANCH = frozenset(
    {"j", "jal", "jr", "jalr", "call", "tail", "beq", "bne", "blt", "bge", "bltu", "bgeu",
     "beqz", "bnez", "blez", "bgez", "bltz", "bgtz", "bgt", "ble", "bgtu", "bleu"}
)  # fmt: skip
_AVR_BRANCH = frozenset(
    {"call", "rcall", "jmp", "rjmp", "breq", "brne", "brcs", "brcc", "brsh", "brlo", "brmi", "brpl", "brge",
     "brlt", "brhs", "brhc", "brts", "brtc", "brvs", "brvc", "brie", "brid", "brbs", "brbc"}
)  # fmt: skip
_AVR_INDIRECT = frozenset({"icall", "eicall", "ijmp", "eijmp"})
#: objdump's annotation of an address operand: ``1234 <symbol>``
_ANNOTATION = re.compile(r"([0-9a-f]+) <([^>]+)>")


@dataclass(frozen=True)
class SoftFloatCall:
    function: str  # the caller
    address: int  # of the call instruction
    helper: str


def _is_branch(ins: Instruction, arch: str) -> bool:
    if arch == "arm":
        return bool(_ARM_BRANCH.match(ins.mnemonic))
    if arch == "avr":
        return ins.mnemonic in _AVR_BRANCH
    return ins.mnemonic in _RV_BRANCH or ins.mnemonic.startswith("c.j")


def _is_indirect_call(ins: Instruction, arch: str) -> bool:
    if arch == "arm":
        return ins.mnemonic.startswith("blx") and not _ANNOTATION.search(ins.operands)
    if arch == "avr":
        return ins.mnemonic in _AVR_INDIRECT
    if ins.mnemonic in ("jalr", "jr") and not _ANNOTATION.search(ins.operands):
        return not (ins.mnemonic == "jr" and ins.operands.strip() == "ra")
    return False


@dataclass
class CallGraph:
    """Per function (by name): the functions it calls, its soft-float helper calls, its
    indirect calls (not followed) and its FPU instructions."""

    calls: dict[str, set[int]] = field(default_factory=dict)  # function -> target function starts
    helper_calls: dict[str, list[SoftFloatCall]] = field(default_factory=dict)
    indirect: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    fpu: dict[str, list[Instruction]] = field(default_factory=dict)


def call_graph(code: ElfCode) -> CallGraph:
    edges = CallGraph()
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
            helper = softfloat_helper(target)
            if helper is not None:
                if is_branch:
                    edges.helper_calls.setdefault(fn.name, []).append(SoftFloatCall(fn.name, ins.address, helper))
                continue
            calls.add(target.start)
    return edges


def reachable(code: ElfCode, edges: CallGraph, entry: str) -> list[str]:
    """The functions reachable from ``entry`` by the graph's edges, breadth first, entry first."""
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
    return reachable(code, call_graph(code), entry)
