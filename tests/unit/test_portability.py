"""The static portability checker (farm/preflight/: portability, disassembly, isa_rules,
call_graph) on real ELFs.

Small programs are compiled here with the Debian toolchains (the same compilers
the firmware uses), each with a ``model_invoke`` whose call graph and
instructions are known: soft-float helpers reachable or not, hard-float code,
DSP instructions, Thumb-2 on Armv6-M, RISC-V F/D/A instructions (also one hidden
from the disassembler as ``.word``), calls through literal-pool pointers and
registers. The sine firmware of the pipeline is checked too, for every device of
the default inventory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from farm.build.elf import symbol_at
from farm.preflight.disassembly import PortabilityError, read_elf_code
from farm.preflight.isa_rules import is_softfloat_helper
from farm.preflight.portability import check_elf, lacking_instruction_at
from fixtures_tools import require_tool

PROGRAM = r"""
volatile float g_f = 1.5f;
volatile int g_i = 7;
typedef int (*op_fn)(int, int);
op_fn volatile g_op;

__attribute__((noinline)) int kernel_int(int a, int b) { return a * b + 3; }
__attribute__((noinline)) float kernel_float(float a, float b) { return a * b + 1.0f; }
__attribute__((noinline)) int unreachable_float(void) { return (int)(g_f * 3.0f); }
__attribute__((noinline)) int via_pointer(int a, int b) { return (int)((float)a * (float)b); }
__attribute__((noinline)) void register_op(op_fn fn) { g_op = fn; }
__attribute__((noinline)) int divide(int a, int b) { return a / b; }

#if defined(WITH_DSP)
__attribute__((noinline)) int dsp_mac(int a, int b, int acc) {
  int out;
  __asm volatile("smlabb %0, %1, %2, %3" : "=r"(out) : "r"(a), "r"(b), "r"(acc));
  return out;
}
#endif
#if defined(WITH_ATOMIC)
__attribute__((noinline)) int atomic_add(int v) { return __atomic_fetch_add(&g_i, v, __ATOMIC_SEQ_CST); }
#endif
#if defined(WITH_HIDDEN_F)
__attribute__((noinline)) void hidden_f(void) { __asm volatile(".word 0x00007053"); }
#endif

int model_invoke(void) {
  int r = kernel_int(g_i, 3);
#if defined(WITH_FLOAT)
  g_f = kernel_float(g_f, 2.0f);
#endif
#if defined(WITH_POINTER)
  register_op(via_pointer); /* the address comes from a literal pool (Arm) or lui/addi (RISC-V) */
  r += g_op(r, 2);          /* an indirect call */
#endif
#if defined(WITH_DIV)
  r += divide(r, g_i);
#endif
#if defined(WITH_DSP)
  r += dsp_mac(r, 3, 4);
#endif
#if defined(WITH_ATOMIC)
  r += atomic_add(r);
#endif
#if defined(WITH_HIDDEN_F)
  hidden_f();
#endif
  return r;
}

void _start(void) {
  model_invoke();
  unreachable_float();
  for (;;) {
  }
}
"""

ARM_M3 = ("arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft")
ARM_M4F = ("arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
RV_IMAC = ("riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-misa-spec=2.2")
RV_IMAFC = ("riscv64-unknown-elf-gcc", "-march=rv32imafc", "-mabi=ilp32f", "-misa-spec=2.2")
RV_IMAFDC = ("riscv64-unknown-elf-gcc", "-march=rv32imafdc", "-mabi=ilp32d", "-misa-spec=2.2")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("portability")
    (root / "prog.c").write_text(PROGRAM)
    built: dict[tuple[tuple[str, ...], tuple[str, ...], str], Path] = {}

    def _build(flags: tuple[str, ...], *defines: str, source: str = "") -> Path:
        key = (flags, defines, source)
        if key not in built:
            require_tool(flags[0])  # missing: skip, or FAIL in CI (tests/fixtures_tools.py)
            src = root / "prog.c"
            if source:
                src = root / f"prog{len(built)}.c"
                src.write_text(source)
            elf = root / f"prog{len(built)}.elf"
            cmd = [*flags, "-O2", "-ffunction-sections", "-nostartfiles", "-nostdlib", "-Wl,--gc-sections",
                   "-Wl,-e,_start", *(f"-D{d}" for d in defines), str(src), "-lgcc", "-o", str(elf)]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            built[key] = elf
        return built[key]

    return _build


def _at(elf: Path, address: int) -> str:
    ins = read_elf_code(elf).instruction_at(address)
    assert ins is not None, f"no instruction at 0x{address:x}"
    return ins.mnemonic


# --------------------------------------------------------------------------- soft-float helpers


def test_softfloat_helper_names():
    for name in ("__aeabi_fmul", "__aeabi_fadd", "__aeabi_dadd", "__aeabi_d2f", "__aeabi_f2iz", "__aeabi_i2f",
                 "__aeabi_ul2f", "__aeabi_cfcmple", "__aeabi_fcmplt", "__addsf3", "__mulsf3", "__divsf3",
                 "__floatsisf", "__floatunsisf", "__fixsfsi", "__fixunsdfsi", "__extendsfdf2", "__truncdfsf2",
                 "__gesf2", "__ltdf2", "__unordsf2", "__negsf2", "__powisf2"):
        assert is_softfloat_helper(name), name
    for name in ("__aeabi_idiv", "__aeabi_uidivmod", "__aeabi_ldivmod", "__aeabi_memcpy", "__aeabi_lmul",
                 "__mulsi3", "__divdi3", "__ashldi3", "__clzsi2", "memcpy", "fully_connected_f32", "floor"):
        assert not is_softfloat_helper(name), name


def test_int8_build_without_float_is_float_free(build):
    elf = build(ARM_M3, "WITH_DIV")
    report = check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="int8")
    assert report.portable and report.float_free and report.float_kind == "float-free"
    assert report.reachable[0] == "model_invoke" and "kernel_int" in report.reachable
    assert "unreachable_float" not in report.reachable
    assert report.softfloat_call_sites == 0 and report.summary().startswith("float-free")


def test_int8_build_calling_softfloat_is_not_portable_and_names_function_address_helper(build):
    elf = build(ARM_M3, "WITH_FLOAT")
    report = check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="int8")
    assert not report.portable and not report.float_free
    helpers = {v.instruction_or_helper for v in report.violations}
    assert {"call to __aeabi_fmul", "call to __addsf3"} <= helpers
    for v in report.violations:
        assert v.function == "kernel_float" == symbol_at(elf, v.address)
        assert _at(elf, v.address).startswith("b")  # bl, or b.w for a tail call
        assert "must be float-free" in v.reason
        assert v.sentence.startswith(f"{v.instruction_or_helper} at 0x{v.address:08x} in kernel_float: ")
    assert "not portable to cortex-m3 (fpu none, no DSP): call to" in report.summary()


def test_float32_on_fpu_less_core_is_soft_float_and_counts_call_sites(build):
    elf = build(ARM_M3, "WITH_FLOAT")
    report = check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="float32")
    assert report.portable and report.float_kind == "soft-float" and report.elf_float_abi == "soft"
    assert report.softfloat_helpers == ["__addsf3", "__aeabi_fmul"]
    assert report.softfloat_call_sites == 2
    assert report.softfloat_calls_per_inference is None  # not measured statically
    # unreachable_float also calls helpers, but not from model_invoke
    assert all(c.function == "kernel_float" for c in report.softfloat_calls)
    assert "2 soft-float call sites on the inference path (__addsf3, __aeabi_fmul)" in report.summary()


def test_function_pointer_from_literal_pool_is_followed_and_indirect_call_listed(build):
    elf = build(ARM_M3, "WITH_POINTER")
    report = check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="int8")
    assert "via_pointer" in report.reachable and "register_op" in report.reachable
    assert [c.helper for c in report.softfloat_calls if c.function == "via_pointer"]
    assert not report.portable  # via_pointer converts to float: an int8 build must not
    assert report.indirect_calls and report.indirect_calls[0][0] == "model_invoke"


# --------------------------------------------------------------------------- instructions the core lacks


def test_hard_float_build_on_fpu_less_core_is_flagged_everywhere(build):
    elf = build(ARM_M4F, "WITH_FLOAT")
    m4f = check_elf(elf, core="cortex-m4", fpu="sp", dsp=True, variant="float32")
    assert m4f.portable and m4f.float_kind == "hard-float" and m4f.elf_float_abi == "hard"
    assert m4f.softfloat_call_sites == 0 and m4f.fpu_instructions
    m3 = check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="float32")
    assert not m3.portable
    first = m3.violations[0]
    assert first.function == "kernel_float" and first.instruction_or_helper.startswith("v")
    assert first.reason == "FPU instruction on a core without an FPU"
    assert _at(elf, first.address) == first.instruction_or_helper.split()[0]
    # not only the inference path: every function the core would execute
    assert "unreachable_float" in {v.function for v in m3.violations}


def test_int8_build_with_fpu_instructions_breaks_float_free_even_with_an_fpu(build):
    elf = build(ARM_M4F, "WITH_FLOAT")
    report = check_elf(elf, core="cortex-m4", fpu="sp", dsp=True, variant="int8")
    assert not report.portable
    assert {v.function for v in report.violations} == {"model_invoke", "kernel_float"}  # g_f's vldr/vstr too
    assert "FPU instruction reachable from model_invoke in an int8 build" in report.violations[0].reason


def test_dsp_instruction_on_core_without_dsp(build):
    elf = build(ARM_M4F, "WITH_DSP")
    assert check_elf(elf, core="cortex-m4", fpu="sp", dsp=True, variant="int8").portable
    for core, fpu in (("cortex-m4", "sp"), ("cortex-m3", "none")):
        report = check_elf(elf, core=core, fpu=fpu, dsp=False, variant="int8")
        [v] = [v for v in report.violations if "DSP" in v.reason]
        assert (v.function, v.instruction_or_helper.split()[0]) == ("dsp_mac", "smlabb")
        assert v.reason == "DSP/SIMD instruction on a core without the DSP extension"
        assert lacking_instruction_at(elf, v.address, core=core, fpu=fpu, dsp=False).startswith("smlabb")
    assert lacking_instruction_at(elf, v.address, core="cortex-m4", fpu="sp", dsp=True) is None


def test_thumb2_and_hardware_divide_on_armv6m(build):
    elf = build(ARM_M3, "WITH_DIV")
    report = check_elf(elf, core="cortex-m0plus", fpu="none", dsp=False, variant="int8")
    reasons = {(v.function, v.instruction_or_helper.split()[0]): v.reason for v in report.violations}
    assert reasons[("divide", "sdiv")] == "Thumb-2 instruction on an Armv6-M core"
    assert any(r == "32-bit Thumb-2 instruction on an Armv6-M core" for r in reasons.values())


def test_riscv_soft_float_helpers_are_named(build):
    elf = build(RV_IMAC, "WITH_FLOAT")
    report = check_elf(elf, core="rv32imac", fpu="none", dsp=False, variant="float32")
    assert report.portable and report.arch == "riscv" and report.float_kind == "soft-float"
    assert report.softfloat_helpers == ["__addsf3", "__mulsf3"]
    int8 = check_elf(elf, core="rv32imac", fpu="none", dsp=False, variant="int8")
    assert {v.instruction_or_helper for v in int8.violations} == {"call to __addsf3", "call to __mulsf3"}
    assert all(_at(elf, v.address) in ("jal", "j", "call", "tail") for v in int8.violations)


def test_riscv_f_instructions_on_core_without_fpu(build):
    elf = build(RV_IMAFC, "WITH_FLOAT")
    assert check_elf(elf, core="rv32imafc", fpu="sp", dsp=False, variant="float32").float_kind == "hard-float"
    report = check_elf(elf, core="rv32imac", fpu="none", dsp=False, variant="float32")
    assert not report.portable
    first = report.violations[0]
    assert first.function == "kernel_float" and first.instruction_or_helper.startswith("f")
    assert first.reason == "FPU instruction (RISC-V F/D extension) on a core without an FPU"


def test_riscv_double_precision_on_single_precision_fpu(build):
    source = PROGRAM.replace("float kernel_float(float a, float b) { return a * b + 1.0f; }",
                             "float kernel_float(float a, float b) { return (float)((double)a * b + 1.0); }")
    elf = build(RV_IMAFDC, "WITH_FLOAT", source=source)
    report = check_elf(elf, core="rv32imafc", fpu="sp", dsp=False, variant="float32")
    assert any(v.reason == "double-precision instruction (RISC-V D extension) on a single-precision FPU"
               and v.function == "kernel_float" for v in report.violations)


def test_riscv_f_instruction_hidden_as_data_is_found(build):
    elf = build(RV_IMAC, "WITH_HIDDEN_F")
    report = check_elf(elf, core="rv32imac", fpu="none", dsp=False, variant="int8")
    [v] = report.violations
    assert (v.function, v.instruction_or_helper) == ("hidden_f", ".word 0x00007053")
    assert "hidden from the disassembler" in v.reason


def test_riscv_atomics_on_core_without_a(build):
    elf = build(RV_IMAC, "WITH_ATOMIC")
    assert check_elf(elf, core="rv32imac", fpu="none", dsp=False, variant="int8").portable
    report = check_elf(elf, core="rv32imc", fpu="none", dsp=False, variant="int8")
    [v] = report.violations
    assert v.function == "atomic_add" and v.instruction_or_helper.startswith("amoadd.w")


def test_wrong_architecture_and_missing_entry_are_errors(build):
    elf = build(RV_IMAC)
    with pytest.raises(PortabilityError, match="riscv ELF cannot run on cortex-m3"):
        check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="int8")
    with pytest.raises(PortabilityError, match="no function 'nope'"):
        check_elf(elf, core="rv32imac", fpu="none", dsp=False, variant="int8", entry="nope")


# --------------------------------------------------------------------------- the pipeline's firmware


@pytest.fixture(scope="module")
def sine_builds(state_dir: Path):
    """(device, variant) -> PreparedFirmware of the sine model, for every device of devices.yaml."""
    from farm.config.inventory import load_inventory
    from farm.models import VARIANTS, build_variant
    from farm.build.prepare import prepare_firmware

    repo = Path(__file__).resolve().parents[2]
    inventory = load_inventory(repo / "devices.yaml")
    out = {}
    for variant in VARIANTS:
        art = build_variant("sine", variant, state_dir / "models")
        for device in inventory.devices:
            out[(device, variant)] = prepare_firmware(art.tflite_path, "sine", variant, device, state_dir)
    return out


def test_sine_int8_is_float_free_on_every_board(sine_builds):
    from farm.preflight.portability import check_device

    devices = {d.name for d, _ in sine_builds}
    assert devices == {"qemu-m4f", "qemu-m3", "qemu-rv32", "avr-mega2560", "avr-1284p"}
    for (device, variant), fw in sine_builds.items():
        report = check_device(fw.build.elf, device, variant)
        assert report.portable, report.summary()
        if variant == "int8":
            assert report.float_free, f"{device.name}: {report.summary()}"


def test_sine_float_builds_are_soft_float_without_fpu_and_hard_float_with(sine_builds):
    from farm.preflight.portability import check_device

    for (device, variant), fw in sine_builds.items():
        if variant == "int8":
            continue
        report = check_device(fw.build.elf, device, variant)
        if device.fpu == "none":
            assert report.float_kind == "soft-float" and report.softfloat_call_sites > 0
            assert any("mul" in h for h in report.softfloat_helpers), report.softfloat_helpers
        else:
            assert report.float_kind == "hard-float" and report.softfloat_call_sites == 0
