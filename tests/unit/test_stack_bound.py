"""The static stack bound (farm/build/stack.py) on small ELFs built here with -fstack-usage:
frames from GCC's .su files, summed along the deepest chain of the call graph; a frame from
the disassembly where there is no .su entry; Cortex-M handlers on top; and the cases where the
bound is not computable (recursion, alloca), which keep the fixed reservation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from farm.build import stack
from farm.build.stack import ALIGN, ARM_EXCEPTION_FRAME, FIXED_BYTES, MARGIN_BYTES, parse_su, read_su_files, \
    reservation, su_files
from farm.measure.job import elf_code_and_graph


def stack_bound(elf: Path, frames):
    """The bound over the ELF's disassembly and call graph from farm.preflight (as the build gets them)."""
    return stack.stack_bound(elf, frames, *elf_code_and_graph(elf))

pytestmark = pytest.mark.requires_tool("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc")

RV_FLAGS = ["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32"]
ARM_FLAGS = ["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]

# a chain _start -> main -> model_invoke -> deep, each with a local array the compiler must keep
CHAIN = r"""
__attribute__((noinline)) int deep(volatile int *p) { volatile int a[24]; a[0] = *p; a[23] = a[0] + 1; return a[23]; }
__attribute__((noinline)) int model_invoke(void) { volatile int b[8]; b[0] = 1; return deep(&b[0]) + b[7]; }
__attribute__((noinline)) int shallow(void) { volatile int c[2]; c[0] = 2; return c[0]; }
int main(void) { volatile int d[4]; d[0] = model_invoke(); d[1] = shallow(); return d[0] + d[1]; }
"""
RV_START = r"""
int main(void);
void _start(void) { main(); for (;;) {} }
/* assembly, no .su entry: its frame comes from the disassembly (48 bytes) */
__asm__(".text\n.globl asm_frame\n.type asm_frame, @function\nasm_frame:\n"
        "  addi sp, sp, -48\n  sw ra, 44(sp)\n  lw ra, 44(sp)\n  addi sp, sp, 48\n  ret\n"
        ".size asm_frame, .-asm_frame\n");
void asm_frame(void);
__attribute__((noinline)) void uses_asm(void) { asm_frame(); }
"""


def _build(tmp_path: Path, compiler: list[str], sources: dict[str, str], entry: str, keep: str = "") -> Path:
    objects = []
    for name, text in sources.items():
        src = tmp_path / name
        src.write_text(text)
        obj = tmp_path / (src.stem + ".o")
        subprocess.run([*compiler, "-O2", "-fstack-usage", "-ffunction-sections", "-c", str(src), "-o", str(obj)],
                       check=True, cwd=tmp_path)
        objects.append(str(obj))
    elf = tmp_path / "fw.elf"
    subprocess.run([*compiler, "-nostdlib", "-nostartfiles", "-Wl,--gc-sections", f"-Wl,-e,{entry}",
                    f"-Wl,--undefined={entry}", *([f"-Wl,--undefined={keep}"] if keep else []), "-o", str(elf), *objects], check=True, cwd=tmp_path)
    return elf


def _frames(tmp_path: Path) -> dict[str, int]:
    return {name: entry.bytes for name, entry in read_su_files(su_files(tmp_path)).items()}


def test_parse_su_lines_as_gcc_writes_them():
    text = ("/src/main.c:233:43:timed_loop.constprop\t48\tstatic\n"
            "src/model.c:126:9:model_invoke\t32\tstatic\n"
            "k.c:10:6:vla_user\t16\tdynamic\n"
            "k.c:20:6:bounded\t40\tdynamic,bounded\n")
    entries = {e.name: e for e in parse_su(text)}
    assert entries["timed_loop.constprop"].bytes == 48 and entries["timed_loop.constprop"].source == "/src/main.c:233:43"
    assert entries["model_invoke"].qualifier == "static" and entries["model_invoke"].bounded
    assert not entries["vla_user"].bounded and entries["bounded"].bounded and entries["bounded"].bytes == 40


def test_bound_is_the_deepest_chain_of_su_frames_rv32(tmp_path: Path):
    elf = _build(tmp_path, RV_FLAGS, {"chain.c": CHAIN, "start.c": RV_START + "int keep(void) { uses_asm(); return 0; }"},
                 "_start")
    frames = _frames(tmp_path)
    bound = stack_bound(elf, read_su_files(su_files(tmp_path)))
    assert bound.reason is None, bound.reason
    assert bound.path == ["_start", "main", "model_invoke", "deep"]
    assert bound.bytes == frames["_start"] + frames["main"] + frames["model_invoke"] + frames["deep"]
    assert bound.inference_bytes == frames["model_invoke"] + frames["deep"]
    assert frames["deep"] >= 24 * 4  # the array is on the stack: the figure is GCC's, not a guess
    assert bound.handler_bytes == 0  # no trap entry in this ELF
    size, how = reservation(bound)
    assert size == -(-(bound.bytes + MARGIN_BYTES) // ALIGN["riscv"]) * ALIGN["riscv"] and size % 16 == 0
    assert "static bound" in how and str(MARGIN_BYTES) in how


def test_a_function_without_su_gets_its_frame_from_the_disassembly(tmp_path: Path):
    start = RV_START.replace("void _start(void) { main(); for (;;) {} }",
                             "void _start(void) { uses_asm(); main(); for (;;) {} }")
    elf = _build(tmp_path, RV_FLAGS, {"chain.c": CHAIN, "start.c": start}, "_start")
    bound = stack_bound(elf, read_su_files(su_files(tmp_path)))
    assert bound.from_disassembly["asm_frame"] == 48
    frames = _frames(tmp_path)
    assert bound.bytes == frames["_start"] + max(frames["uses_asm"] + 48,
                                                 frames["main"] + frames["model_invoke"] + frames["deep"])


def test_recursion_and_alloca_are_not_computable_and_keep_the_fixed_stack(tmp_path: Path):
    recursive = r"""
__attribute__((noinline)) int model_invoke(int n) { volatile int a[4]; a[0] = n; return n ? model_invoke(n - 1) + a[0] : 0; }
void _start(void) { model_invoke(3); for (;;) {} }
"""
    elf = _build(tmp_path, RV_FLAGS, {"rec.c": recursive}, "_start")
    bound = stack_bound(elf, read_su_files(su_files(tmp_path)))
    assert bound.bytes is None and bound.reason == "recursion: model_invoke -> model_invoke"
    assert reservation(bound) == (FIXED_BYTES["riscv"], f"fixed 2048 B (bound not computable: {bound.reason})")

    dynamic = tmp_path / "dyn"
    dynamic.mkdir()
    text = r"""
__attribute__((noinline)) int model_invoke(int n) { volatile char *p = __builtin_alloca(n); p[0] = 1; return p[0]; }
void _start(void) { model_invoke(100); for (;;) {} }
"""
    elf = _build(dynamic, RV_FLAGS, {"dyn.c": text}, "_start")
    bound = stack_bound(elf, read_su_files(su_files(dynamic)))
    assert bound.bytes is None and "model_invoke has a frame of run-time size (GCC: dynamic" in bound.reason


def test_cortex_m_handlers_and_the_exception_frame_go_on_top(tmp_path: Path):
    startup = r"""
int main(void);
void Reset_Handler(void) { main(); for (;;) {} }
__attribute__((noinline)) void report(volatile int *p) { volatile int r[10]; r[0] = *p; r[9] = r[0]; }
void Fault_Handler(void) { volatile int f[3]; f[0] = 1; report(&f[0]); for (;;) {} }
__attribute__((section(".vectors"), used)) void (*const g_vectors[4])(void) = {
    0, Reset_Handler, Fault_Handler, Fault_Handler};
"""
    elf = _build(tmp_path, ARM_FLAGS, {"chain.c": CHAIN, "startup.c": startup}, "Reset_Handler",
                 keep="g_vectors")
    frames = _frames(tmp_path)
    bound = stack_bound(elf, read_su_files(su_files(tmp_path)))
    assert bound.reason is None, bound.reason
    path_bytes = frames["Reset_Handler"] + frames["main"] + frames["model_invoke"] + frames["deep"]
    handler = ARM_EXCEPTION_FRAME["soft"] + frames["Fault_Handler"] + frames["report"]
    assert bound.handler_bytes == handler
    assert bound.bytes == path_bytes + handler
    assert reservation(bound)[0] % ALIGN["arm"] == 0


def test_read_timing_answer_with_and_without_the_stack_fields():
    """The harness appends the painted stack to READ_TIMING; an older (or AVR) answer has none."""
    import struct

    from farm.board.protocol import parse_timing

    timing = struct.pack("<BIQQQQQ", 0, 4, 400, 100, 100, 440, 40)
    old = parse_timing(timing)
    assert (old.count, old.loop_ticks, old.stack_used_bytes, old.stack_size_bytes) == (4, 440, None, None)
    new = parse_timing(timing + struct.pack("<II", 308, 704))
    assert (new.count, new.null_loop_ticks, new.stack_used_bytes, new.stack_size_bytes) == (4, 40, 308, 704)
    later = parse_timing(timing + struct.pack("<III", 308, 704, 99))  # fields a later harness adds: ignored
    assert later == new
    with pytest.raises(ValueError, match="expected at least 45"):
        parse_timing(timing[:20])
