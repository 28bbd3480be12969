"""The `farm` command end to end: build, run on QEMU, store, report — through the real CLI.

Each test runs `farm` as a subprocess (as a user would) against the test state
folder, so models and firmware are cached across the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farm.store.results import ResultsStore


REPO = Path(__file__).resolve().parents[2]


def farm(*args: str, cwd: Path = REPO, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if db is not None:
        env["FARM_DB_URL"] = f"sqlite:///{db}"
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_run_json_int8_on_m3_is_bit_exact_repeatable_and_stored(tmp_path: Path):
    db = tmp_path / "results.db"
    first = farm("run", "--device", "qemu-m3", "--model", "sine", "--variant", "int8", "--json", db=db)
    assert first.returncode == 0, first.stderr
    second = farm("run", "--device", "qemu-m3", "--model", "sine", "--variant", "int8", "--json", db=db)
    assert second.returncode == 0, second.stderr
    a, b = (json.loads(p.stdout.strip()) for p in (first, second))
    for r in (a, b):
        assert (r["device"], r["model"], r["variant"], r["status"]) == ("qemu-m3", "sine", "int8", "ok")
        assert r["unit"] == "instructions" and r["latency_is_estimate"] is True
        assert r["bit_exact_fraction"] == 1.0
        assert r["energy_source"].startswith("modelled")
        assert r["energy_uj"] > 0 and r["latency_us"] == pytest.approx(r["count_median"] / 25e6 * 1e6)
        assert r["accuracy_device"] == r["accuracy_host"]
        assert 0 < r["flash_bytes"] < 64 * 1024 and 0 < r["ram_bytes"]
        assert r["compiler_flags"].startswith("-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")
    assert a["count_median"] == b["count_median"] and a["count_min"] == b["count_min"]
    store = ResultsStore(f"sqlite:///{db}")
    runs = store.runs()
    assert len(runs) == 2
    stored = store.results_for_run(runs[-1].id)
    assert [(r.device, r.variant, r.count_median, r.elf_sha256) for r in stored] == [
        ("qemu-m3", "int8", b["count_median"], b["elf_sha256"])]
    assert stored[0].model_sha256 and stored[0].farm_version and stored[0].compiler


def test_run_all_variants_on_both_arm_boards_prints_a_table(state_dir: Path):
    proc = farm("run", "--device", "qemu-m4f", "--device", "qemu-m3", "--model", "sine")
    assert proc.returncode == 0, proc.stderr
    for text in ("qemu-m4f", "qemu-m3", "float32", "int8-weights", "dynamic", "int8", "instructions", "modelled"):
        assert text in proc.stdout


def test_infer_user_model_matches_tflite_micro(tmp_path: Path, state_dir: Path):
    from farm.models import build_variant

    art = build_variant("sine", "int8", state_dir / "models")
    np.save(tmp_path / "in.npy", art.test_inputs)
    proc = farm("infer", str(art.tflite_path), "--device", "qemu-m4f",
                "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"))
    assert proc.returncode == 0, proc.stderr
    out = np.load(tmp_path / "out.npy")
    assert out.dtype == np.int8 and out.shape == art.ref_outputs.shape
    assert np.array_equal(out, art.ref_outputs)
    # the same samples with their leading batch dimension of 1 give outputs with it
    np.save(tmp_path / "in_b.npy", art.test_inputs.reshape(len(art.test_inputs), 1, -1))
    proc = farm("infer", str(art.tflite_path), "--device", "qemu-m4f",
                "--input", str(tmp_path / "in_b.npy"), "--output", str(tmp_path / "out_b.npy"))
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(tmp_path / "out_b.npy").reshape(out.shape), out)


def test_infer_rejects_wrong_dtype_with_a_sentence(tmp_path: Path, state_dir: Path):
    from farm.models import build_variant

    art = build_variant("sine", "int8", state_dir / "models")
    np.save(tmp_path / "in.npy", art.test_inputs.astype(np.float32))
    proc = farm("infer", str(art.tflite_path), "--device", "qemu-m4f",
                "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"))
    assert proc.returncode == 2
    assert "input dtype is float32, the model input is int8" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def unsupported_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real .tflite with an operator the code generator will not support (CUMSUM)."""
    code = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
        "import sys, tensorflow as tf, keras\n"
        "inp = keras.Input(shape=(8,), batch_size=1)\n"
        "x = keras.layers.Dense(8)(inp)\n"
        "out = keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=1))(x)\n"
        "model = keras.Model(inp, out)\n"
        "open(sys.argv[1], 'wb').write(tf.lite.TFLiteConverter.from_keras_model(model).convert())\n"
    )
    path = tmp_path_factory.mktemp("unsupported") / "cumsum_model.tflite"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)
    return path


def test_unsupported_operator_refused_by_name_before_building(unsupported_tflite: Path, tmp_path: Path,
                                                               state_dir: Path):
    np.save(tmp_path / "in.npy", np.zeros((2, 8), np.float32))
    builds_before = sorted((state_dir / "builds").glob("*")) if (state_dir / "builds").exists() else []
    proc = farm("infer", str(unsupported_tflite), "--device", "qemu-m3",
                "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"))
    assert proc.returncode == 2
    assert "CUMSUM" in proc.stderr and "cumsum_model.tflite" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.npy").exists()
    builds_after = sorted((state_dir / "builds").glob("*")) if (state_dir / "builds").exists() else []
    assert builds_after == builds_before


def test_malformed_inventory_is_one_message_with_file_line_field(tmp_path: Path):
    bad = tmp_path / "devices.yaml"
    bad.write_text("devices:\n  - name: a\n    core: cortex-m3\n    fpu: none\n    dsp: false\n"
                   "    clock_hz: fast\n    flash_bytes: 1\n    ram_bytes: 1\n    board: b\n"
                   "    emulator: {kind: qemu, machine: mps2-an385}\n")
    proc = farm("run", "--devices", str(bad), "--device", "a")
    assert proc.returncode == 2
    assert f"{bad}:6" in proc.stderr and "clock_hz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_models_size_table_json(state_dir: Path):
    proc = farm("models", "--model", "sine", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["variant"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"float32", "int8-weights", "dynamic", "int8"}
    assert rows["int8"]["size_bytes"] < rows["int8-weights"]["size_bytes"] < rows["float32"]["size_bytes"]
    # sine's weight tensors are all under 1024 elements: TensorFlow's dynamic range leaves them float
    assert abs(rows["dynamic"]["size_bytes"] - rows["float32"]["size_bytes"]) < 100
