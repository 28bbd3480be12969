"""The dynamic-range variant on the boards, through `farm run` (as a user runs it).

- a user's hybrid .tflite (made here from a small Keras Dense model with the seed's "Model 2"
  conversion: Optimize.DEFAULT, no representative dataset) measured like a zoo model with
  ``farm run --model PATH.tflite`` on the FPU-less Cortex-M3: status ok, outputs within
  DYNAMIC_TOLERANCE of tf.lite.Interpreter's BUILTIN_REF kernels, counts in instructions,
  stored with the file's path and sha256;
- the zoo's sine in its dynamic variant on the Cortex-M4F.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farm.measure.job import DYNAMIC_TOLERANCE
from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]


def farm(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_DB_URL": f"sqlite:///{db}"}
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=900)


@pytest.fixture(scope="module")
def hybrid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dense 32 -> 64 (relu) -> 8: the first weight tensor (2048 elements) becomes a hybrid
    FULLY_CONNECTED, the second (512) stays float."""
    import keras

    from farm.models.dynamic_range import to_dynamic

    keras.utils.set_random_seed(11)
    model = keras.Sequential([keras.Input(shape=(32,), batch_size=1), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(8)])
    path = tmp_path_factory.mktemp("user") / "dense_hybrid.tflite"
    path.write_bytes(to_dynamic(model))
    return path


def test_run_a_hybrid_tflite_on_m3_within_tolerance_and_stored(hybrid_file: Path, tmp_path: Path):
    db = tmp_path / "results.db"
    proc = farm("run", "--model", str(hybrid_file), "--device", "qemu-m3", "--json", db=db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r,) = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert (r["device"], r["model"], r["variant"], r["status"]) == ("qemu-m3", "dense_hybrid.tflite", "dynamic", "ok")
    assert r["unit"] == "instructions" and r["latency_is_estimate"] is True and r["count_median"] > 0
    assert r["count_min"] <= r["count_median"] <= r["count_max"]
    assert r["max_abs_error"] <= DYNAMIC_TOLERANCE, r["max_abs_error"]
    assert r["energy_uj"] > 0 and r["energy_source"].startswith("modelled")
    assert r["compiler_flags"].startswith("-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")  # soft-float: no FPU
    assert r["details"]["float_kind"] == "soft-float"
    sha = hashlib.sha256(hybrid_file.read_bytes()).hexdigest()
    assert r["model_sha256"] == sha and r["model_size_bytes"] == hybrid_file.stat().st_size
    assert "latency-only" in (r["message"] or "")
    (stored,) = ResultsStore(f"sqlite:///{db}").results_for_run(ResultsStore(f"sqlite:///{db}").runs()[-1].id)
    assert (stored.model, stored.variant, stored.status, stored.model_sha256) == (
        "dense_hybrid.tflite", "dynamic", "ok", sha)
    assert stored.count_median == r["count_median"] and stored.max_abs_error == r["max_abs_error"]
    assert stored.details["model_file"] == str(hybrid_file.resolve())
    assert stored.details["model_reference"] == "tflite-builtin-ref"
    assert "hybrid FULLY_CONNECTED" in stored.details["variant_from_file"]


def test_a_file_is_the_variant_it_is(hybrid_file: Path, tmp_path: Path):
    proc = farm("run", "--model", str(hybrid_file), "--device", "qemu-m3", "--variant", "int8",
                db=tmp_path / "results.db")
    assert proc.returncode == 2, proc.stderr
    assert "is a dynamic model (hybrid FULLY_CONNECTED (operator #0)" in proc.stderr
    assert "--variant int8 does not apply" in proc.stderr
    missing = farm("run", "--model", str(tmp_path / "nope.tflite"), "--device", "qemu-m3",
                   db=tmp_path / "results.db")
    assert missing.returncode == 2 and "nope.tflite: no such file" in missing.stderr


def test_sine_dynamic_on_m4f(tmp_path: Path):
    db = tmp_path / "results.db"
    proc = farm("run", "--model", "sine", "--variant", "dynamic", "--device", "qemu-m4f", "--json", db=db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r,) = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert (r["device"], r["model"], r["variant"], r["status"]) == ("qemu-m4f", "sine", "dynamic", "ok")
    assert r["unit"] == "instructions" and r["count_median"] > 0
    assert r["max_abs_error"] <= DYNAMIC_TOLERANCE
    assert r["accuracy_device"] == pytest.approx(r["accuracy_host"], abs=DYNAMIC_TOLERANCE)
    assert "-mfloat-abi=hard" in r["compiler_flags"] and r["details"]["float_kind"] == "hard-float"
    (stored,) = ResultsStore(f"sqlite:///{db}").results_for_run(ResultsStore(f"sqlite:///{db}").runs()[-1].id)
    assert (stored.model, stored.variant, stored.count_median) == ("sine", "dynamic", r["count_median"])
