"""`farm profile`: instructions per function of one inference, from QEMU's execution trace,
agreeing with the harness's own count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]


def test_profile_sums_to_the_measured_count_and_names_the_kernels(state_dir: Path):
    from farm.config.inventory import load_inventory
    from farm.measure.job import measure_one

    device = next(d for d in load_inventory(REPO / "devices.yaml").devices if d.name == "qemu-m3")
    measured = measure_one(device, "sine", "int8", state=state_dir)
    assert measured.status == "ok", measured.message
    proc = subprocess.run([sys.executable, "-m", "farm", "profile", "--device", "qemu-m3", "--model", "sine",
                           "--variant", "int8", "--json"], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert (doc["device"], doc["model"], doc["variant"], doc["unit"]) == ("qemu-m3", "sine", "int8", "instructions")
    functions = {f["function"]: f for f in doc["functions"]}
    # sine's three fully connected layers run in the optimized matrix-vector core
    assert functions["tf_mat_vec_s8_g4"]["share"] > 0.8
    assert {"model_invoke", "fully_connected_s8_fast"} <= set(functions)
    assert sum(f["instructions"] for f in doc["functions"]) == pytest.approx(doc["total"])
    # two independent measurements of the same thing: the trace and the SysTick windows
    assert doc["total"] == pytest.approx(measured.count_median, rel=0.005)


def test_profile_refuses_a_board_that_is_not_emulated(tmp_path: Path):
    inventory = tmp_path / "devices.yaml"
    inventory.write_text("devices:\n  - name: nucleo\n    board: nucleo_f446re\n    platform: ststm32\n"
                         "    core: cortex-m4\n    fpu: sp\n    dsp: true\n    flash_bytes: 524288\n"
                         "    ram_bytes: 131072\n    clock_hz: 180000000\n"
                         "    serial: {port: /dev/serial/by-id/usb-x, baud: 115200}\n    flash: {protocol: stlink}\n")
    proc = subprocess.run([sys.executable, "-m", "farm", "--devices", str(inventory), "profile", "--device", "nucleo",
                           "--model", "sine"], cwd=REPO, capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "not emulated" in proc.stderr
