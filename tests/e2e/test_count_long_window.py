"""Long timed windows count exactly, run after run (issue 14, "Exact counts first").

The calibration "model" (tests/fixtures/calib_model) loops CALIB_LOOP_ITERATIONS x 4
instructions; here it is rebuilt with 5 M iterations, 20 M instructions per
inference like ic / vww int8 on qemu-m4f, and measured with ic's plan (windows of
3 inferences, 60 M instructions). The former SysTick timer wrapped every 2^24 ticks
(10.5 M instructions at shift 6) and its 5-instruction handler ran 5 or 6 times in
such a window, depending on the start phase: the count moved between 20,000,025
and 20,000,027 from run to run. The dual timer has no interrupt, so the count is
model_invoke's own: 4 (fault check) + 1 (movw) + the loop + 12 (output copy,
return), the figure tests/e2e/test_harness.py reads off the disassembly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.board.qemu import EmulatorSpec, QemuBoard
from farm.board.session import Session
from farm.board.transport import open_transport
from farm.build.firmware import BuildTarget, build_firmware
from farm.config.inventory import load_inventory
from farm.config.machine_flags import machine_flags
from farm.measure.timing import MeasurePlan, measure_timing

REPO = Path(__file__).resolve().parents[2]
CALIB = REPO / "tests" / "fixtures" / "calib_model"
#: model_invoke's instructions besides the loop (tests/e2e/test_harness.py)
CALL_INSTRUCTIONS = 4 + 1 + 12
#: ic's plan (farm/models/ic.py)
IC_PLAN = MeasurePlan(warmup=1, windows=2, inferences_per_window=3)


def _calib_with(iterations: int, tmp_path: Path) -> Path:
    model = tmp_path / f"calib_{iterations}"
    model.mkdir()
    (model / "model.c").write_text((CALIB / "model.c").read_text())
    header = (CALIB / "model_generated.h").read_text()
    assert "#define CALIB_LOOP_ITERATIONS 10000\n" in header
    (model / "model_generated.h").write_text(header.replace("#define CALIB_LOOP_ITERATIONS 10000\n",
                                                            f"#define CALIB_LOOP_ITERATIONS {iterations}\n"))
    return model


def _build(device_name: str, model: Path, state_dir: Path) -> tuple[Path, EmulatorSpec]:
    device = load_inventory(REPO / "devices.yaml").device(device_name)
    assert device.emulator is not None
    elf = build_firmware(model, BuildTarget(device.board, machine_flags(device.core, device.fpu, device.dsp)),
                         state_dir).elf
    return elf, EmulatorSpec(device.emulator.machine, device.emulator.icount_shift)


@pytest.mark.parametrize("device_name", ["qemu-m4f", "qemu-m3"])
def test_a_long_window_counts_exactly_run_after_run(device_name: str, tmp_path: Path, state_dir: Path):
    iterations = 5_000_000
    elf, spec = _build(device_name, _calib_with(iterations, tmp_path), state_dir)
    runs = []
    for _ in range(2):
        with QemuBoard(spec, elf) as board:
            session = Session(open_transport(board.url), timeout=60)
            identity = session.wait_ready()
            assert identity["timer"] == "dualtimer"
            timing = measure_timing(session, bytes(8), IC_PLAN, "instructions", spec.instructions_per_inference,
                                    timeout_per_inference=60)
            runs.append(timing.window_counts)
    exact = 4 * iterations + CALL_INSTRUCTIONS
    assert runs == [[exact] * IC_PLAN.windows] * 2, f"every window of both runs counts {exact:,}"


def test_a_window_beyond_the_32_bit_counter_is_exact(tmp_path: Path, state_dir: Path):
    """The dual timer's fine counter wraps every 2^32 ticks (2.68 G instructions at
    shift 6); one inference of 700 M x 4 instructions spans more than that, so the
    window needs the coarse counter to place the fine one (board_mps2.c)."""
    iterations = 700_000_000
    elf, spec = _build("qemu-m3", _calib_with(iterations, tmp_path), state_dir)
    with QemuBoard(spec, elf) as board:
        session = Session(open_transport(board.url), timeout=60)
        identity = session.wait_ready()
        session.load_input(bytes(8))
        session.run(1, timeout=600)
        timing = session.read_timing()
    r = spec.ticks_per_instruction(identity["timer"], int(identity["timer_hz"]))
    exact = 4 * iterations + CALL_INSTRUCTIONS
    assert timing.loop_ticks > 2**32
    # one inference: the two windows are each quantized to a tick, not rounded to the instruction
    assert abs((timing.loop_ticks - timing.null_loop_ticks) - r * (exact - 2)) <= 2
    assert abs(spec.instructions_per_inference(timing, identity) - exact) <= 2 / r
