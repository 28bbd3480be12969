"""Local serial boards, the parts that need no board: flash plans, count scaling, the
inventory's ``flash`` sections. An emulated board behind a real serial port (a pty) is
run in tests/e2e/test_board_serial.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.board import agent
from farm.board.flashing import cycles_from_timer, plan_for
from farm.board.protocol import Timing
from farm.config.inventory import load_inventory
from inventories import SERIAL_M3_WITH_POWER

REPO = Path(__file__).resolve().parents[2]

SERIAL_DEVICE = SERIAL_M3_WITH_POWER


def test_platformio_upload_plan_for_a_real_board():
    inventory = load_inventory(REPO / "examples" / "devices-bench.yaml")
    nucleo = inventory.device("nucleo-f446re")
    plan = plan_for(nucleo)
    assert plan.protocol == "stlink" and plan.unit == "cycles"
    flasher = agent.flasher_for(plan.protocol, plan.port, dict(plan.options))
    ini = flasher.project_ini()
    assert "upload_protocol = stlink" in ini and f"upload_port = {nucleo.serial.port}" in ini
    assert "adapter serial 066DFF535155878281151932" in ini and "framework = arduino" in ini
    assert flasher.command("/p")[:2] == ["pio", "run"] and "nobuild" in flasher.command("/p")
    evil = agent.flasher_for("stlink", "/dev/ttyACM0\n[env:evil]", {"board": "x", "platform": "y"})
    with pytest.raises(agent.AgentError):
        evil.project_ini()


def test_real_board_counts_are_cycles_scaled_from_the_timer():
    convert = cycles_from_timer(100_000_000)
    timing = Timing(count=4, total_ticks=0, min_ticks=0, max_ticks=0, loop_ticks=4400, null_loop_ticks=400)
    assert convert(timing, {"timer": "dwt", "timer_hz": "100000000"}) == 1000
    assert convert(timing, {"timer": "micros", "timer_hz": "1000000"}) == 100_000


@pytest.mark.parametrize(("flash", "field", "message"), [
    ("{protocol: qemu}", "devices[0].flash", "protocol qemu needs 'machine'"),
    ("{protocol: qemu, machine: mps2-an386}", "devices[0].flash.machine", "emulates a cortex-m4, but core is cortex-m3"),
    ("{protocol: qemu, machine: mps2-an385, probe_serial: '123'}", "devices[0].flash.probe_serial", "has no probe"),
    ("{protocol: stlink, icount_shift: 6}", "devices[0].flash.icount_shift", "applies to protocol qemu only"),
])  # fmt: skip
def test_flash_sections_are_validated(tmp_path: Path, flash: str, field: str, message: str):
    from farm.config.inventory import InventoryError

    text = SERIAL_DEVICE.format(port="/dev/ttyACM0")
    text = text[: text.index("    flash:")] + f"    flash: {flash}\n"
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    (issue,) = err.value.issues
    assert issue.field == field and message in issue.message and issue.line == len(text.splitlines())
