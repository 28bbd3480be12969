"""The PPK2 driver against a fake PPK2 that speaks its serial protocol on a pty.

The fake streams a known current (encoded through the inverse of the PPK2's
calibration), with the GPIO marker on logic input D0 while the "board" runs its
inferences; the driver's energy per inference must equal the charge the fake
emitted in that window, minus idle, times the voltage, over the count.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fake_ppk2 import FakePpk2
from farm.power.energy import EnergyError, RunWindow, energy_per_inference, power_monitor_for
from farm.config.inventory import load_inventory

IDLE_UA, BUSY_UA, COUNT, VOLTS = 1000.0, 6000.0, 10, 3.3

DEVICE = """\
devices:
  - name: nucleo
    core: cortex-m4
    fpu: sp
    dsp: true
    clock_hz: 84000000
    flash_bytes: 524288
    ram_bytes: 98304
    board: nucleo_f401re
    platform: ststm32
    serial: {{port: /dev/serial/by-id/usb-STM-if02}}
    flash: {{protocol: stlink}}
    power: {{kind: ppk2, voltage: 3.3, port: "{port}"}}
"""


@pytest.fixture
def fake() -> FakePpk2:
    ppk2 = FakePpk2()
    yield ppk2
    ppk2.close()


def _device(tmp_path: Path, port: str):
    path = tmp_path / "devices.yaml"
    path.write_text(DEVICE.format(port=port))
    return load_inventory(path).device("nucleo")


def _board(fake: FakePpk2, marker: bool, seconds: float = 0.05):
    def run() -> RunWindow:
        started = time.monotonic()
        fake.set(BUSY_UA, marker)
        time.sleep(seconds)
        fake.set(IDLE_UA, False)
        return RunWindow(count=COUNT, started=started, finished=time.monotonic(), loop_seconds=seconds)

    return run


def test_energy_is_the_marker_window_charge_minus_idle_over_the_count(fake: FakePpk2, tmp_path: Path):
    device = _device(tmp_path, fake.port)
    figure = energy_per_inference(device, 0, "cycles", run=_board(fake, marker=True))
    charge_uc, high = fake.emitted_marker_charge_uc(IDLE_UA)
    assert high > 0.04 * 100_000  # about 50 ms of marked samples at 100 kS/s
    assert figure.energy_uj == pytest.approx(charge_uc * VOLTS / COUNT, rel=2e-3)
    assert figure.energy_uj == pytest.approx((BUSY_UA - IDLE_UA) * VOLTS * high / 100_000 / COUNT, rel=2e-3)
    assert figure.source.startswith(f"measured: PPK2 {fake.port} at 3.3 V, 10 inferences, GPIO marker window")
    # it drove the PPK2 as ppk2-api does: source meter at the inventory's voltage, board powered
    assert fake.vdd_mv == 3300
    assert b"\x11\x02" in fake.commands and b"\x0c\x01" in fake.commands and b"\x07" in fake.commands


def test_without_a_marker_the_timed_window_is_used(fake: FakePpk2, tmp_path: Path):
    device = _device(tmp_path, fake.port)
    figure = energy_per_inference(device, 0, "cycles", run=_board(fake, marker=False, seconds=0.1))
    expected = (BUSY_UA - IDLE_UA) * VOLTS * 0.1 / COUNT  # 165 uJ
    assert figure.energy_uj == pytest.approx(expected, rel=0.25)
    assert "timed window (no GPIO marker seen)" in figure.source and "approximate" in figure.source


def test_a_device_that_is_not_a_ppk2_is_refused(tmp_path: Path):
    master, slave = os.openpty()  # a serial port on which nobody answers
    try:
        monitor = power_monitor_for(_device(tmp_path, os.ttyname(slave)))
        with pytest.raises(EnergyError, match="did not answer as a PPK2"):
            monitor.measure_energy(lambda: RunWindow(1, 0.0, 0.0), _device(tmp_path, os.ttyname(slave)))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.e2e
def test_measure_one_records_the_ppk2_figure(fake: FakePpk2, tmp_path: Path, state_dir: Path):
    """The pipeline hands the board to the monitor: a serial board (QEMU on a pty) measured by
    the fake PPK2 (which sees no marker and a constant current: zero excess energy)."""
    from farm.measure.job import measure_one

    path = tmp_path / "devices.yaml"
    path.write_text(f"""\
devices:
  - name: usb-m3
    core: cortex-m3
    fpu: none
    dsp: false
    clock_hz: 25000000
    flash_bytes: 4194304
    ram_bytes: 4194304
    board: qemu-mps2-an385
    serial: {{port: {tmp_path / 'ttyFARM0'}}}
    flash: {{protocol: qemu, machine: mps2-an385, icount_shift: 6}}
    power: {{kind: ppk2, voltage: 3.3, port: "{fake.port}"}}
""")
    record = measure_one(load_inventory(path).device("usb-m3"), "sine", "int8", state=state_dir)
    assert record.status == "ok", record.message
    assert record.energy_source.startswith(f"measured: PPK2 {fake.port} at 3.3 V, 64 inferences, timed window")
    assert record.energy_uj == pytest.approx(0.0, abs=1e-9)
