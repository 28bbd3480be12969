"""Real files as teams bring them (tests/user_files.py: 200 KiB of int8 weights, a
RESHAPE/SOFTMAX tail), measured on the emulated boards with ``farm run --model PATH.tflite``
as a user runs it: the schema of TensorFlow <= 2.3 on the Cortex-M3 (the kernels' portable
path), buffers after the flatbuffer on the Cortex-M4F (the DSP path; tflite-micro gets the
buffers moved inside, see farm.models.reference), and float input/output around the integer
graph on the RISC-V core. Every output identical to tflite-micro's, counts exact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from user_files import user_files

    return user_files(tmp_path_factory.mktemp("user-files"))


@pytest.mark.parametrize(("name", "board", "variant"), [
    ("tf-2.3-schema", "qemu-m3", "int8"),
    ("buffer-offset", "qemu-m4f", "int8"),
    ("float-io", "qemu-rv32", "float32"),  # the farm's name for float I/O; held to tflite-micro
])
def test_a_users_file_runs_identical_to_tflite_micro(files, name: str, board: str, variant: str, tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'results.db'}"
    path = files[name]
    proc = subprocess.run([sys.executable, "-m", "farm", "run", "--model", str(path), "--device", board, "--json"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "FARM_DB_URL": db},
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r,) = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert (r["device"], r["model"], r["variant"], r["status"]) == (board, path.name, variant, "ok")
    assert r["bit_exact_fraction"] == 1.0 and r["max_abs_error"] == 0.0
    assert r["unit"] == "instructions" and r["count_min"] == r["count_median"] == r["count_max"] > 0
    assert r["model_size_bytes"] == path.stat().st_size > 200_000 and r["flash_bytes"] > 204_800
    assert r["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    store = ResultsStore(db)
    (stored,) = store.results_for_run(store.runs()[-1].id)
    assert (stored.model, stored.status, stored.count_median) == (path.name, "ok", r["count_median"])
    assert stored.details["model_reference"] == "tflite-micro"
