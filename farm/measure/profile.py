"""Where an inference's instructions go: instructions per function, **measured**
on an emulated board from QEMU's execution trace.

QEMU runs the firmware with ``-d in_asm,exec,nochain``: ``in_asm`` logs every
translation block (TB) once with its instructions, ``exec`` logs every TB
executed (no chaining, so every execution is logged). Each executed TB is
charged to the function holding its first address. The board runs the same
sample twice, ``base`` and ``base + extra`` inferences, in two fresh
emulators; the difference, divided by ``extra``, is one inference's count per
function. Only the functions reachable from ``model_invoke`` are reported (the
harness's UART polling depends on host timing, not on the model).

Attribution is at TB granularity: a block's size is its full translation, capped
by the instruction count QEMU's -icount puts in a short block's cflags; a block an
interrupt cuts short is charged whole.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farm.board.qemu import EmulatorSpec
from farm.board.traces import run_traced
from farm.preflight.call_graph import ENTRY, inference_functions
from farm.preflight.disassembly import PortabilityError, read_elf_code

if TYPE_CHECKING:
    from farm.board.driver import BoardConnection
    from farm.board.leases import LeasePolicy
    from farm.measure.job import Job

_TRACE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/([0-9a-f]+)\]")
#: QEMU's CF_COUNT_MASK: a TB whose cflags carry a count holds at most that many instructions
#: (under -icount QEMU also translates such short blocks at addresses it has full blocks for)
_CF_COUNT_MASK = 0x1FF
_INSTRUCTION = re.compile(r"^0x([0-9a-f]+):")


@dataclass(frozen=True)
class FunctionCount:
    function: str
    instructions: float  # per inference
    share: float  # of the inference's instructions


@dataclass(frozen=True)
class Profile:
    device: str
    elf: Path
    unit: str
    total: float  # instructions per inference in the functions below
    functions: list[FunctionCount]

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "elf": str(self.elf), "unit": self.unit, "total": self.total,
                "source": "measured (QEMU execution trace, per function)",
                "functions": [asdict(f) for f in self.functions]}


def _trace_counts(log: Path, function_at: Any) -> Counter[str]:
    """Instructions executed per function in one QEMU log.

    A block's size is its longest translation at that address (the full block),
    capped by the instruction count in the executed block's cflags."""
    sizes: dict[int, int] = {}
    counts: Counter[str] = Counter()
    block_start: int | None = None
    in_block = False
    with log.open(errors="replace") as fh:
        for line in fh:
            match = _TRACE.match(line)
            if match:
                in_block = False
                pc = int(match.group(1), 16)
                limit = int(match.group(2), 16) & _CF_COUNT_MASK
                size = sizes.get(pc, 0)
                fn = function_at(pc & ~1)
                if fn is not None:
                    counts[fn.name] += min(size, limit) if limit else size
                continue
            if line.startswith("IN:"):
                in_block, block_start, block_size = True, None, 0
                continue
            match = _INSTRUCTION.match(line)
            if match and in_block:
                if block_start is None:
                    block_start = int(match.group(1), 16)
                block_size += 1
                sizes[block_start] = max(sizes.get(block_start, 0), block_size)
    return counts


def _run_traced(device: Any, elf: Path, sample: bytes, inferences: int, timeout: float) -> Path:
    log = Path(tempfile.mkdtemp(prefix="farm-profile-")) / "exec.log"
    spec = EmulatorSpec(device.emulator.machine, device.emulator.icount_shift)
    run_traced(spec, elf, sample, inferences, ("-d", "in_asm,exec,nochain", "-D", str(log)), timeout)
    return log


def profile_inference(device: Any, elf: Path, sample: bytes, *, base: int = 1, extra: int = 2,
                      timeout: float = 600.0) -> Profile:
    """Instructions per function of one inference of `sample` on an emulated `device`."""
    if getattr(device, "emulator", None) is None:
        raise PortabilityError(f"device {device.name}: profiles are measured on emulated boards only")
    code = read_elf_code(elf)
    wanted = set(inference_functions(code, ENTRY))
    logs = [_run_traced(device, elf, sample, n, timeout) for n in (base, base + extra)]
    try:
        short, long = (_trace_counts(log, code.function_at) for log in logs)
    finally:
        for log in logs:
            log.unlink(missing_ok=True)
            log.parent.rmdir()
    per = {name: (long[name] - short[name]) / extra for name in wanted}
    per = {name: n for name, n in per.items() if n > 0}
    total = sum(per.values())
    functions = [FunctionCount(name, n, n / total if total else 0.0)
                 for name, n in sorted(per.items(), key=lambda kv: -kv[1])]
    return Profile(device.name, elf, "instructions", total, functions)


def profile_one(device: Any, model: str, variant: str, *, state: Path, kernels: str = "optimized",
                lease: LeasePolicy | None = None, progress: Callable[[str], None] | None = None) -> Profile:
    """``farm profile``: the job (farm.measure.job.run_job: model, firmware, size check) for
    one zoo model on an emulated device, then :func:`profile_inference` of its first test
    sample while the device's lease is held. Raises the job's failure (DoesNotFit,
    PortabilityError, ...; the CLI reports it); DeviceBusy / DeviceQuarantined propagate."""
    from farm.measure.job import Board, run_job

    profiles: list[Profile] = []

    def trace(job: Job, _board: BoardConnection | None) -> None:
        assert job.art is not None and job.elf is not None
        profiles.append(profile_inference(device, job.elf, job.art.test_inputs[0].tobytes()))

    # the size check only: the profile measures what the build does, portable to the core or not
    job = run_job(device, model, variant, state=state, kernels=kernels, portable=False, work=trace,
                  board=Board.LEASE, doing="tracing", lease=lease, progress=progress or (lambda _: None))
    job.raise_error()
    return profiles[0]

