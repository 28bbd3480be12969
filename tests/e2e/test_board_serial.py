"""Local serial boards for real: an emulated board's UART exposed as a serial device (a pty).

The inventory entry is a real board's: ``serial: {port: ...}`` and ``flash:`` --
with the ``qemu`` flash protocol, which (re)starts QEMU with the ELF and points
the port (a symlink, like /dev/serial/by-id/...) at QEMU's pty. The ``serial``
board driver then opens it with pyserial exactly as it would /dev/ttyACM0.
(The parts that need no board: tests/unit/test_serial_board.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farm.board import agent, identify
from farm.config.inventory import load_inventory
from farm.measure.job import measure_one
from inventories import SERIAL_M3_WITH_POWER

REPO = Path(__file__).resolve().parents[2]

SERIAL_DEVICE = SERIAL_M3_WITH_POWER


def _device(tmp_path: Path):
    path = tmp_path / "devices.yaml"
    path.write_text(SERIAL_DEVICE.format(port=tmp_path / "dev" / "ttyFARM0"))
    return load_inventory(path).device("usb-m3")


def test_measure_one_over_a_local_serial_port(tmp_path: Path, state_dir: Path):
    device = _device(tmp_path)
    assert device.unit == "instructions" and not device.is_emulated and not device.is_remote
    record = measure_one(device, "sine", "int8", state=state_dir)
    assert record.status == "ok", record.message
    assert record.host is None and record.unit == "instructions" and record.bit_exact_fraction == 1.0
    emulated = load_inventory(REPO / "devices.yaml").device("qemu-m3")
    assert record.count_median == measure_one(emulated, "sine", "int8", state=state_dir).count_median
    assert not os.path.exists(device.serial.port + ".pid")  # the board was powered off after


def test_the_port_is_a_serial_device_while_the_board_runs(tmp_path: Path, state_dir: Path):
    from farm.board.registry import open_board
    from farm.build.prepare import prepare_firmware
    from farm.models import build_variant

    device = _device(tmp_path)
    art = build_variant("sine", "int8", state_dir / "models")
    elf = prepare_firmware(art.tflite_path, "sine", "int8", device, state_dir).build.elf
    with open_board(device, elf, tmp_path) as board:
        assert os.path.realpath(device.serial.port).startswith("/dev/pts/")
        assert board.transport_url == device.serial.port
        assert board.identity["model"] == "sine" and board.identity["variant"] == "int8"
        assert board.session.ping(b"serial") == b"serial"


def test_a_board_that_does_not_identify_is_an_infra_error_to_quarantine(tmp_path: Path, state_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(agent.QemuFlasher, "release", lambda self: None)  # held in reset: never boots
    monkeypatch.setattr(identify, "IDENTIFY_TIMEOUT", 0.3)
    record = measure_one(_device(tmp_path), "sine", "int8", state=state_dir)
    assert record.status == "infra-error"
    assert "did not identify" in record.message and "after 3 attempts" in record.message
    assert record.details["quarantine"] is True


def test_farm_run_goes_on_past_a_dead_board_and_quarantines_it(tmp_path: Path, state_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    """One board never boots (held in reset); the run records it as infra-error, quarantines
    it, measures the other board, and the next run skips the quarantined one."""
    import json

    from click.testing import CliRunner

    from farm.cli.main import cli
    from farm.board.leases import LeaseManager

    real_release = agent.QemuFlasher.release
    monkeypatch.setattr(agent.QemuFlasher, "release",
                        lambda self: None if "dead" in self.port else real_release(self))
    monkeypatch.setattr(identify, "IDENTIFY_TIMEOUT", 0.3)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    monkeypatch.setenv("FARM_DB_URL", url)
    path = tmp_path / "devices.yaml"
    path.write_text(SERIAL_DEVICE.format(port=tmp_path / "dead" / "ttyFARM0")
                    + SERIAL_DEVICE.format(port=tmp_path / "ttyFARM1").split("devices:\n", 1)[1]
                    .replace("name: usb-m3", "name: usb-m3-b"))
    args = ["--devices", str(path), "run", "--model", "sine", "--variant", "int8", "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 1, first.output
    results = {r["device"]: r for r in map(json.loads, first.stdout.strip().splitlines())}
    assert results["usb-m3"]["status"] == "infra-error" and "did not identify" in results["usb-m3"]["message"]
    assert results["usb-m3-b"]["status"] == "ok", results["usb-m3-b"]["message"]  # the run went on with the other board
    state = LeaseManager(url).state("usb-m3")
    assert state.state == "quarantined" and "did not identify" in state.reason
    second = CliRunner().invoke(cli, args)
    assert "usb-m3 is quarantined until" in second.output
    assert [json.loads(line)["device"] for line in second.stdout.strip().splitlines()] == ["usb-m3-b"]
