"""Malformed inventories through the real CLI: one screen naming file, line and field; exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = (REPO / "examples" / "devices-bench.yaml").read_text()

#: case -> (text to replace once in the bench example, replacement, expected message,
#:          expected field, the text on the line the error must point at)
CASES = {
    "syntax error": ("    user: farm\n", "    user: [farm\n", "YAML syntax error", "", None),
    "unknown key": ("      baud: 115200\n    flash:\n      protocol: stlink",
                    "      baud: 115200\n      parity: even\n    flash:\n      protocol: stlink",
                    "unknown key 'parity'", "devices[0].serial.parity", "parity: even"),
    "undefined host": ("      host: bench-1                 # the port below",
                       "      host: bench-9                 # the port below",
                       "host 'bench-9' is not declared under 'hosts'", "devices[1].serial.host", "bench-9"),
    "duplicate name": ("  - name: esp32c3-devkit", "  - name: pico-m0plus",
                       "duplicate device name 'pico-m0plus'", "devices[2].name", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_inventory_is_one_screen_with_file_line_field(case: str, tmp_path: Path):
    old, new, message, field, needle = CASES[case]
    assert BENCH.count(old) == 1, old
    text = BENCH.replace(old, new)
    lines = text.splitlines()
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "farm", "--devices", str(path), "devices"], cwd=tmp_path,
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 10
    assert message in proc.stderr and str(path) in proc.stderr
    if case == "syntax error":
        return  # the parser's position: within the flow sequence that never closes
    if needle is None:  # the second use of the name
        line = [i for i, ln in enumerate(lines, 1) if new.strip() in ln][-1]
    else:
        line = next(i for i, ln in enumerate(lines, 1) if needle in ln)
    assert f"{path}:{line}: {field}:" in proc.stderr, proc.stderr
