"""The harness on the RISC-V board: QEMU sifive_e (RV32IMAC, no FPU, 16 KiB RAM).

The calibration "model" (tests/fixtures/calib_model) runs a RISC-V loop of exactly
4 x 10 000 instructions; minstret under -icount shift=0 counts retired
instructions, so the farm's figure is checked against that known count. An input
starting with 0xFF executes an F-extension instruction, which this core lacks: the
trap handler must report mcause/mepc/mtval and the host must decode it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from board_checks import assert_sleeps_waiting_and_answers
from farm.board.qemu import EmulatorSpec, QemuBoard
from farm.board.faults import decode_fault
from farm.build.firmware import BuildTarget, build_firmware, build_log_of
from farm.config.inventory import load_inventory
from farm.config.machine_flags import machine_flags
from farm.measure.timing import MeasurePlan, measure_timing
from farm.preflight.portability import check_elf, read_elf_code
from farm.board.protocol import FrameDecoder, MsgType, encode
from farm.board.session import DeviceFault, Session
from farm.board.transport import open_transport


REPO = Path(__file__).resolve().parents[2]
CALIB = REPO / "tests" / "fixtures" / "calib_model"
LOOP_INSTRUCTIONS = 10000 * 4
SPEC = EmulatorSpec("sifive_e", 0)


@pytest.fixture(scope="module")
def rv32():
    return load_inventory(REPO / "devices.yaml").device("qemu-rv32")


@pytest.fixture(scope="module")
def calib_elf(state_dir: Path, rv32) -> Path:
    from farm.measure.job import elf_code_and_graph

    target = BuildTarget(rv32.board, machine_flags(rv32.core, rv32.fpu, rv32.dsp))
    build = build_firmware(CALIB, target, state_dir, elf_code_and_graph)  # the stack sized from its bound
    assert build.float_abi == "soft" and "-march=rv32imac -mabi=ilp32" in build.compiler_flags
    return build.elf


def _session(board: QemuBoard) -> tuple[Session, dict[str, str]]:
    session = Session(open_transport(board.url), timeout=10)
    return session, session.wait_ready()


def test_elf_fits_the_16k_ram_with_a_sized_stack(calib_elf: Path, rv32, state_dir: Path):
    from farm.build.elf import elf_sizes

    from farm.measure.job import elf_code_and_graph

    build = build_firmware(CALIB, BuildTarget(rv32.board, machine_flags(rv32.core, rv32.fpu, rv32.dsp)), state_dir,
                           elf_code_and_graph)
    sizes = elf_sizes(calib_elf)
    # counted in RAM like on the Cortex-M boards: the static bound + margin, not the fixed 2 KiB
    assert build.stack_bound_bytes is not None and "static bound" in (build.stack_sizing or "")
    assert sizes.sections[".stack"] == build.stack_reserved_bytes < 0x800
    assert build.stack_bound_bytes < build.stack_reserved_bytes
    assert sizes.ram_bytes <= rv32.ram_bytes
    code = read_elf_code(calib_elf)
    assert code.function_named("_start").start == 0x20400000  # where the mask ROM jumps


def test_identify_ping_outputs_and_frame_limit(calib_elf: Path):
    with QemuBoard(SPEC, calib_elf) as board:
        session, ready = _session(board)
        assert ready["board"] == "sifive_e" and ready["model"] == "calib"
        assert (ready["timer"], ready["timer_hz"], ready["float_abi"]) == ("minstret", "320000000", "soft")
        assert ready["max_payload"] == "512" and session.max_payload == 512  # the host learnt the limit
        assert session.identify() == ready
        assert session.ping(b"\x00\xa5\x5a rv32") == b"\x00\xa5\x5a rv32"
        session.load_input(bytes(range(10, 18)))
        session.run(3)
        assert session.read_output(8) == bytes(range(11, 19))
        # a frame above the board's limit is not for it: dropped unanswered, the harness resynchronizes
        session.transport.write(encode(MsgType.PING, bytes(600)))
        assert FrameDecoder().feed(session.transport.read_some(0.3)) == []
        assert session.ping(b"after") == b"after"


def test_instruction_count_is_exact_and_repeatable(calib_elf: Path, rv32, state_dir: Path):
    from farm.board.registry import open_board

    counts = []
    for _ in range(2):
        with open_board(rv32, calib_elf, state_dir / "logs") as board:
            timing = measure_timing(board.session, bytes(8), MeasurePlan(warmup=1, windows=3, inferences_per_window=8),
                                    board.unit, board.convert, timeout_per_inference=10)
            counts.append(timing.window_counts)
            assert board.unit == "instructions"
    assert counts[0] == counts[1]
    assert len(set(counts[0])) == 1, "minstret under -icount shift=0 gives the same count every window"
    # the loop plus the call, the fault check and the 8-byte output copy: a few dozen instructions
    assert LOOP_INSTRUCTIONS <= counts[0][0] <= LOOP_INSTRUCTIONS + 60


def test_f_instruction_traps_and_is_decoded(calib_elf: Path):
    with QemuBoard(SPEC, calib_elf) as board:
        session, _ = _session(board)
        session.load_input(b"\xff" + bytes(7))
        with pytest.raises(DeviceFault) as info:
            session.run(1, timeout=10)
    words = info.value.words
    assert words[0] == 2 and words[1] == 2  # RISC-V, mcause 2: illegal instruction
    report = decode_fault(words, calib_elf, has_fpu=False)
    assert report.kind == "trap 2 FPU" and report.function == "model_invoke"
    assert report.registers["mtval"] == 0x00007053  # QEMU reports the instruction bits
    assert report.sentence == (f"trap: illegal instruction (FPU instruction 0x00007053, RISC-V F/D extension) "
                               f"at 0x{report.pc:08x} in model_invoke on a core without an FPU")
    # the static check found the very same instruction before anything was flashed
    static = check_elf(calib_elf, core="rv32imac", fpu="none", dsp=False, variant="int8")
    assert [v.address for v in static.violations] == [report.pc]


def test_fault_is_classified_not_portable(calib_elf: Path, rv32):
    from farm.measure.fault_verdict import fault_status

    [violation] = check_elf(calib_elf, core="rv32imac", fpu="none", dsp=False, variant="int8").violations
    words = (2, 2, violation.address, 0x7053)  # what the board reports for that instruction
    status, message = fault_status(DeviceFault(words), rv32, calib_elf)
    assert status == "not-portable"
    assert message.startswith("faulted on the board: trap: illegal instruction (FPU instruction 0x00007053")
    # a trap that says nothing about a missing unit stays "faulted"
    status, message = fault_status(DeviceFault((2, 5, violation.address, 0x10)), rv32, calib_elf)
    assert (status, message) == ("faulted", f"trap: load access fault at 0x{violation.address:08x} in model_invoke "
                                            "(mtval 0x00000010)")


def test_a_build_too_big_for_16k_ram_is_does_not_fit_with_the_numbers(tmp_path: Path, rv32, state_dir: Path,
                                                                       calib_elf: Path):
    from farm.build.elf import elf_sizes
    from farm.build.firmware import FirmwareBuildError
    from farm.measure.job import elf_code_and_graph
    from farm.preflight.checks import linker_overflow

    big = tmp_path / "big_model"
    big.mkdir()
    (big / "model.c").write_text((CALIB / "model.c").read_text())
    header = (CALIB / "model_generated.h").read_text().replace("#define MODEL_ARENA_BYTES 16",
                                                               "#define MODEL_ARENA_BYTES 20000")
    (big / "model_generated.h").write_text(header)
    target = BuildTarget(rv32.board, machine_flags(rv32.core, rv32.fpu, rv32.dsp))
    with pytest.raises(FirmwareBuildError) as info:
        build_firmware(big, target, state_dir, elf_code_and_graph)
    sentence = linker_overflow(str(info.value), rv32)
    assert sentence is not None
    needed = int(sentence.split("needs ")[1].split(" bytes")[0])
    # the arena and the stack sized for it at least (the second link, after the bound's)
    assert needed > 20000 + elf_sizes(calib_elf).sections[".stack"]
    assert sentence == f"RAM: needs {needed} bytes, qemu-rv32 has 16384 (refused by the linker)"
    assert not info.value.cached

    # a deterministic verdict is remembered (by the caller's policy): the next build of the same
    # key raises the same error at once, without running PlatformIO again
    def policy(text: str) -> bool:
        return linker_overflow(text, rv32) is not None

    with pytest.raises(FirmwareBuildError) as first:
        build_firmware(big, target, state_dir, elf_code_and_graph, remember_failure=policy)
    assert not first.value.cached and linker_overflow(str(first.value), rv32) == sentence
    log = build_log_of(str(first.value))
    assert log is not None, str(first.value)
    logged = log.read_text()
    with pytest.raises(FirmwareBuildError) as again:
        build_firmware(big, target, state_dir, elf_code_and_graph, remember_failure=policy)
    assert again.value.cached and str(again.value) == str(first.value)
    assert log.read_text() == logged  # PlatformIO did not run
    # a caller without a policy (or whose policy does not call it a verdict) builds again
    with pytest.raises(FirmwareBuildError) as rebuilt:
        build_firmware(big, target, state_dir, elf_code_and_graph, remember_failure=lambda text: False)
    assert not rebuilt.value.cached and linker_overflow(str(rebuilt.value), rv32) == sentence


def test_minstret_ticks_are_instructions_times_two_to_the_shift():
    assert SPEC.ticks_to_instructions(40031, 320_000_000, timer="minstret") == 40031
    assert EmulatorSpec("sifive_e", 2).ticks_to_instructions(4 * 40031, 320_000_000, timer="minstret") == 40031
    # SysTick at 25 MHz under shift 6: 1.6 ticks per instruction
    assert EmulatorSpec("mps2-an385", 6).ticks_to_instructions(16, 25_000_000, timer="systick") == 10



def test_waiting_for_a_request_the_board_sleeps_and_still_answers(calib_elf: Path):
    with QemuBoard(SPEC, calib_elf) as board:
        session, _ = _session(board)
        assert_sleeps_waiting_and_answers(board, session)
