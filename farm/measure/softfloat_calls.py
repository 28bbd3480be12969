"""Soft-float helper calls per inference, **measured** on an emulated board from
QEMU's execution trace (the static scan only counts call sites: they sit in loops).

``farm portability`` reports it for soft-float builds (farm.measure.portability_matrix).
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from farm.board.qemu import EmulatorSpec
from farm.board.traces import run_traced
from farm.preflight.call_graph import ENTRY
from farm.preflight.disassembly import PortabilityError, read_elf_code
from farm.preflight.isa_rules import softfloat_helper

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


#: seconds the traced emulator may take to boot and to answer a RUN: the execution trace runs
#: QEMU ~10x slower, and a nightly on a loaded machine saw 30 s run out for models that take
#: well under a second untraced; a board that really hangs is still reported, later
TRACE_TIMEOUT = 120.0


def count_softfloat_calls(device: Any, elf: Path, sample: bytes, *, inferences: int = 2,
                          timeout: float = TRACE_TIMEOUT) -> dict[str, float]:
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
    if getattr(device, "emulator", None) is None:
        raise PortabilityError(f"device {device.name}: soft-float calls are measured on emulated boards only")
    code = read_elf_code(elf)
    helpers = {f.start: name for f in code.functions if (name := softfloat_helper(f)) is not None}
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
            if name != ENTRY and caller is not None and softfloat_helper(caller) is not None:
                continue  # a helper's own call of another helper
            counts[name] += 1
    invocations = counts.pop(ENTRY, 0)
    if invocations != inferences:
        raise PortabilityError(f"execution trace saw {invocations} calls of {ENTRY}, expected {inferences}")
    return {name: n / inferences for name, n in sorted(counts.items())}
