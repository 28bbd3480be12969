"""The harness on a real emulated board: build with PlatformIO, boot in QEMU, talk the protocol.

Uses the calibration "model" in tests/fixtures/calib_model: a loop of exactly
40 000 instructions, so the instruction count the farm derives from the dual timer under
-icount can be checked against a known figure.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from board_checks import assert_sleeps_waiting_and_answers
from farm.board.qemu import EmulatorSpec, QemuBoard
from farm.board.faults import decode_fault
from farm.build.firmware import BuildTarget, build_firmware
from farm.config.machine_flags import machine_flags
from farm.measure.timing import MeasurePlan, measure_timing
from farm.board.protocol import MsgType, encode
from farm.board.session import DeviceFault, DeviceRefused, Session
from farm.board.transport import open_transport


CALIB = Path(__file__).parents[1] / "fixtures" / "calib_model"
LOOP_INSTRUCTIONS = 10000 * 4


@pytest.fixture(scope="module")
def calib_elf(state_dir: Path) -> Path:
    target = BuildTarget("qemu-mps2-an385", machine_flags("cortex-m3", "none", False))
    return build_firmware(CALIB, target, state_dir).elf


def _session(board: QemuBoard) -> tuple[Session, dict[str, str]]:
    session = Session(open_transport(board.url), timeout=10)
    return session, session.wait_ready()


def test_build_is_cached(calib_elf: Path, state_dir: Path):
    target = BuildTarget("qemu-mps2-an385", machine_flags("cortex-m3", "none", False))
    again = build_firmware(CALIB, target, state_dir)
    assert again.cached and again.elf == calib_elf
    assert again.float_abi == "soft" and "-mcpu=cortex-m3" in again.compiler_flags


def test_identify_ping_and_outputs(calib_elf: Path):
    with QemuBoard(EmulatorSpec("mps2-an385", 6), calib_elf) as board:
        session, ready = _session(board)
        assert ready["board"] == "mps2-an385" and ready["model"] == "calib"
        assert ready["timer"] == "dualtimer" and ready["timer_hz"] == "25000000"
        assert session.identify() == ready
        assert session.ping(b"\x00\xa5\x5a hello") == b"\x00\xa5\x5a hello"
        session.load_input(bytes(range(10, 18)))
        session.run(3)
        assert session.read_output(8) == bytes(range(11, 19))
        assert session.read_timing().count == 3
        # the same input again is not sent (Session.load_input): the harness still holds it
        # staged after three inferences, and a different one is sent
        session.load_input(bytes(range(10, 18)))
        session.run(1)
        assert session.read_output(8) == bytes(range(11, 19))
        session.load_input(bytes(range(20, 28)))
        session.run(1)
        assert session.read_output(8) == bytes(range(21, 29))


def test_resynchronizes_after_garbage_on_the_line(calib_elf: Path):
    with QemuBoard(EmulatorSpec("mps2-an385", 6), calib_elf) as board:
        session, _ = _session(board)
        # noise, a false sync with a short length, a frame with a bad CRC
        bad = bytearray(encode(MsgType.PING, b"lost"))
        bad[-1] ^= 0x55
        session.transport.write(b"\x00\xff garbage \xa5\x5a\x02\x00" + bytes(bad))
        # the false sync's 2-byte frame swallows some bytes; the harness then hunts again
        for attempt in range(3):
            try:
                assert session.ping(b"after") == b"after"
                break
            except Exception:  # noqa: BLE001 - a request eaten by the resync is retried
                if attempt == 2:
                    raise


def test_requests_out_of_range_are_refused(calib_elf: Path):
    with QemuBoard(EmulatorSpec("mps2-an385", 6), calib_elf) as board:
        session, _ = _session(board)
        with pytest.raises(DeviceRefused, match="READ_OUTPUT"):
            session._request(MsgType.READ_OUTPUT, struct.pack("<IH", 4, 100))
        with pytest.raises(DeviceRefused, match="request 0x42 refused: status 1: unknown request type"):
            session._request(0x42)
        with pytest.raises(DeviceRefused, match="LOAD_INPUT refused: status 3"):
            session._request(MsgType.LOAD_INPUT, struct.pack("<I", 6) + bytes(4))


def test_instruction_count_is_exact_and_repeatable(calib_elf: Path):
    counts = []
    for _ in range(2):
        spec = EmulatorSpec("mps2-an385", 6)
        with QemuBoard(spec, calib_elf) as board:
            session, _ = _session(board)
            timing = measure_timing(session, bytes(8), MeasurePlan(warmup=1, windows=3, inferences_per_window=8),
                                    "instructions", spec.instructions_per_inference, timeout_per_inference=10)
            counts.append(timing.window_counts)
    assert counts[0] == counts[1]
    assert len(set(counts[0])) == 1, "every window gives the same exact count"
    # Read off the disassembly (arm-none-eabi-gcc 12.2, -O2): model_invoke runs 4
    # instructions for the fault check, movw, the 4 x 10000-instruction loop and 12
    # for the output copy and return.
    assert counts[0][0] == 4 + 1 + LOOP_INSTRUCTIONS + 12


def test_fault_is_reported_not_a_hang(calib_elf: Path):
    with QemuBoard(EmulatorSpec("mps2-an385", 6), calib_elf) as board:
        session, _ = _session(board)
        session.load_input(b"\xff" + bytes(7))
        with pytest.raises(DeviceFault) as info:
            session.run(1, timeout=10)
    report = decode_fault(info.value.words, calib_elf, has_fpu=False)
    assert report.kind == "UsageFault UNDEFINSTR"
    assert report.function == "model_invoke"
    assert "undefined instruction" in report.sentence and "in model_invoke" in report.sentence


def test_run_count_limits_are_refused(calib_elf: Path):
    with QemuBoard(EmulatorSpec("mps2-an385", 6), calib_elf) as board:
        session, _ = _session(board)
        for count in (0, 65):
            with pytest.raises(DeviceRefused, match="RUN count must be 1..64"):
                session._request(MsgType.RUN, struct.pack("<I", count))
        session.run(64)  # the limit itself is fine
        assert session.read_timing().count == 64


def test_null_invoke_is_the_two_instructions_the_host_adds_back(calib_elf: Path):
    """The count's definition depends on it: (loop - null loop) / n + 2."""
    import subprocess

    listing = subprocess.run(["arm-none-eabi-objdump", "-d", "--disassemble=null_invoke", str(calib_elf)],
                             capture_output=True, text=True, check=True).stdout
    body = [line for line in listing.splitlines() if line.startswith(" ") and ":\t" in line]
    assert [line.split("\t")[2].split()[0] for line in body] == ["movs", "bx"]



def test_waiting_for_a_request_the_board_sleeps_and_still_answers(calib_elf: Path):
    with QemuBoard(EmulatorSpec("mps2-an385", 6), calib_elf) as board:
        session, _ = _session(board)
        assert_sleeps_waiting_and_answers(board, session)
