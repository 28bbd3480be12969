"""`farm portability` end to end: the matrix model x variant x device through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inventories import SERIAL_M3


REPO = Path(__file__).resolve().parents[2]


def farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=600)


def test_portability_json_lists_every_model_variant_device_with_status_and_reason(state_dir: Path):
    from farm.models import VARIANTS, list_models

    from farm.measure.portability_matrix import CELL_STATUSES

    proc = farm("portability", "--json")
    cells = json.loads(proc.stdout)
    from farm.config.inventory import load_inventory

    devices = tuple(load_inventory(REPO / "devices.yaml").names)
    assert {"qemu-m4f", "qemu-m3", "qemu-rv32"} <= set(devices)
    assert sorted((c["model"], c["variant"], c["device"]) for c in cells) == sorted(
        (m, v, d) for m in list_models() for v in VARIANTS for d in devices)
    for c in cells:
        assert c["status"] in CELL_STATUSES and c["reason"], c
        if c["status"] == "runs":
            assert c["checked"] == "static+board" and c["violations"] == []
            assert c["flash_bytes"] <= c["device_flash_bytes"] and c["ram_bytes"] <= c["device_ram_bytes"]
        if c["variant"] == "int8" and c["float_kind"] is not None:
            assert c["float_kind"] == "float-free" and c["softfloat_call_sites"] == 0, c
    assert proc.returncode == (0 if all(c["status"] == "runs" for c in cells) else 1), proc.stderr
    sine = {(c["variant"], c["device"]): c for c in cells if c["model"] == "sine"}
    assert all(c["status"] == "runs" for c in sine.values()), [c["reason"] for c in sine.values()]
    assert sine["float32", "qemu-m4f"]["float_kind"] == "hard-float"
    assert sine["float32", "qemu-m4f"]["softfloat_calls_per_inference"] is None
    m3, rv32 = sine["float32", "qemu-m3"], sine["float32", "qemu-rv32"]
    for cell in (m3, rv32):
        assert cell["float_kind"] == "soft-float" and cell["float_abi"] == "soft"
        assert cell["softfloat_call_sites"] > 0 and cell["softfloat_calls_per_inference"] > cell["softfloat_call_sites"]
    # the same model makes the same float multiplications on both ISAs, whatever the helper is called
    assert m3["softfloat_calls_by_helper"]["__aeabi_fmul"] == rv32["softfloat_calls_by_helper"]["__mulsf3"]
    # Strategy A dequantizes every weight in float: more soft-float calls than float32
    assert sine["int8-weights", "qemu-m3"]["softfloat_calls_per_inference"] > m3["softfloat_calls_per_inference"]


def test_portability_static_only_table(state_dir: Path):
    proc = farm("portability", "--static-only", "--model", "sine", "--device", "qemu-m3", "--device", "qemu-rv32")
    assert proc.returncode == 0, proc.stderr
    assert "static checks only" in proc.stdout
    for text in ("qemu-m3", "qemu-rv32", "portable (float-free)", "soft-float", "sf call sites", "__mulsf3"):
        assert text in proc.stdout, text


def test_portability_refuses_unknown_model():
    proc = farm("portability", "--model", "nope")
    assert proc.returncode == 2 and "unknown model(s) nope" in proc.stderr


SERIAL_BOARD = SERIAL_M3


def test_a_serial_board_that_cannot_be_opened_is_an_infra_error_cell(tmp_path: Path, state_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    """The board is "flashed", but its port (a /dev path) does not exist: the farm could not
    use the board. The cell says infra-error (no verdict on the firmware), exit code 1, and
    no traceback -- the matrix goes on."""
    from click.testing import CliRunner

    from farm.board import agent
    from farm.cli.main import cli

    port = "/dev/tinyfarm-missing/ttyUSB9"
    assert not os.path.exists(port)
    monkeypatch.setattr(agent.QemuFlasher, "load", lambda self, image: {})  # flashed; the port stays absent
    inventory = tmp_path / "devices.yaml"
    inventory.write_text(SERIAL_BOARD.format(port=port))
    # in this process: the monkeypatch does not reach a cluster's worker processes
    result = CliRunner().invoke(cli, ["portability", "--devices", str(inventory), "--model", "sine",
                                      "--variant", "int8", "--scheduler", "in-process"])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    assert "infra-error" in output
    assert f"cannot open serial port {port}" in output

    json_run = CliRunner().invoke(cli, ["portability", "--devices", str(inventory), "--model", "sine",
                                        "--variant", "int8", "--json", "--scheduler", "in-process"])
    [cell] = json.loads(json_run.stdout)
    assert (cell["device"], cell["status"], cell["checked"]) == ("usb-m3", "infra-error", "static+board")
    assert cell["reason"].startswith(f"usb-m3: cannot open serial port {port}")
