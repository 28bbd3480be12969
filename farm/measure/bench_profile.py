"""The bench's per-layer goals (``profile_per_mac``, farm.measure.bench_goals): a
``farm profile`` of the goal's cell, its instructions in the goal's functions over the MACs
of the goal's layers.

Attribution is per function, as `farm profile` measures it: a kernel's inlined helpers count
as the kernel; the functions counted are those whose name contains ``Goal.functions`` and the
file-local (static) functions of the kernel's source file ``Goal.source``, found in the
ELF's symbol table (each file's local symbols follow its STT_FILE entry)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from farm.measure.bench import BenchRow
from farm.measure.bench_goals import GOALS, Goal
from farm.measure.profile import Profile


def layer_macs(tflite: Path, opcode: str, kernels: str = "optimized") -> int:
    """Multiply-accumulates per inference of the model's `opcode` layers."""
    from farm.codegen.lowering import lower
    from farm.codegen.tflite_reader import read_tflite

    return sum(step.macs for step in lower(read_tflite(tflite), kernels).steps if step.opcode == opcode)


def local_functions(elf: Path, source: str) -> set[str]:
    """The names of the file-local functions that `source` (a file name) put into `elf`."""
    from elftools.elf.elffile import ELFFile

    names: set[str] = set()
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        current = None
        for sym in symtab.iter_symbols() if symtab is not None else ():
            kind, bind = sym["st_info"]["type"], sym["st_info"]["bind"]
            if kind == "STT_FILE":
                current = Path(sym.name).name
            elif kind == "STT_FUNC" and bind == "STB_LOCAL" and current == source:
                names.add(sym.name)
    return names


def per_mac(profile: Profile, functions: str, macs: int, *, source: str = "") -> float:
    """Instructions per MAC in the profiled functions whose name contains `functions`, plus
    the local functions of the source file `source` (when given)."""
    if macs <= 0:
        raise ValueError(f"no multiply-accumulates in the layers of {functions!r}")
    local = local_functions(profile.elf, source) if source else set()
    counted = sum(f.instructions for f in profile.functions if functions in f.function or f.function in local)
    return counted / macs


def profile_goals(rows: Sequence[BenchRow], devices: Sequence[Any], *, state: Path, kernels: str,
                  run_profile: Callable[[Any, str, str], Profile], goals: Sequence[Goal] = GOALS,
                  progress: Callable[[str], None] = lambda _: None) -> dict[str, float]:
    """The profile_per_mac figure of every such goal whose cell this bench measured ok."""
    from farm.models import build_variant

    ok = {(r.model, r.variant, r.device) for r in rows if r.status == "ok"}
    by_name = {d.name: d for d in devices}
    figures = {}
    for g in goals:
        if g.figure != "profile_per_mac" or (g.model, g.variant, g.device) not in ok:
            continue
        progress(f"profiling {g.model}/{g.variant} on {g.device} for '{g.name}'")
        profile = run_profile(by_name[g.device], g.model, g.variant)
        art = build_variant(g.model, g.variant, state / "models")
        figures[g.name] = per_mac(profile, g.functions, layer_macs(art.tflite_path, g.opcode, kernels),
                                  source=g.source)
    return figures
