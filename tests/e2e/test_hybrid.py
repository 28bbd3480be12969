"""Acceptance (issue 13): `farm infer` on a hybrid (dynamic-range) .tflite gives outputs
within the stated tolerance of tf.lite.Interpreter's BUILTIN_REF kernels on qemu-m4f
(hard float), qemu-m3 and qemu-rv32 (soft float).

One model holds every hybrid form TensorFlow Lite has (tests/hybrid_models.py):
CONV_2D with per-channel weights (asymmetric input) and per-tensor weights
(symmetric), DEPTHWISE_CONV_2D per channel (asymmetric), and FULLY_CONNECTED
in all four combinations of per-channel / per-tensor weights and asymmetric /
symmetric input quantization. The converter makes everything per channel; the
per-tensor forms are the same int8 data read with one scale, and the symmetric
FULLY_CONNECTEDs have their ``asymmetric_quantize_inputs`` cleared. The samples
include the quantization's edge cases (all zeros, one sign, rounding ties).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hybrid_models import (
    assert_matches_reference,
    hybrid_ops,
    per_tensor_weights,
    run_reference,
    samples,
    set_asymmetric_inputs,
    to_hybrid,
)

REPO = Path(__file__).resolve().parents[2]

#: operator index -> (opcode, per-channel weights, asymmetric input quantization) of the model
EXPECTED_OPS = {
    0: ("CONV_2D", True, False),  # per-channel conv: TensorFlow Lite's asymmetric kernel
    1: ("CONV_2D", False, False),  # per-tensor conv: its symmetric kernel
    2: ("DEPTHWISE_CONV_2D", True, False),
    4: ("FULLY_CONNECTED", True, True),
    5: ("FULLY_CONNECTED", True, False),
    6: ("FULLY_CONNECTED", False, True),
    7: ("FULLY_CONNECTED", False, False),
}


def _farm_infer(path: Path, inputs: np.ndarray, board: str, tmp_path: Path) -> np.ndarray:
    """`farm infer` of the .tflite at `path` on `board`: the outputs it saved."""
    np.save(tmp_path / "in.npy", inputs)
    proc = subprocess.run([sys.executable, "-m", "farm", "infer", str(path), "--device", board,
                           "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy")],
                          cwd=REPO, capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "out.npy")


def _hybrid_model() -> bytes:
    import keras

    keras.utils.set_random_seed(13)
    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.3)
    inputs = keras.Input((6, 6, 8), batch_size=1)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", bias_initializer=bias)(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", bias_initializer=bias)(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=8, padding="same", activation="relu6", bias_initializer=bias)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, bias_initializer=bias)(x)
    x = layers.Dense(48, activation="relu", bias_initializer=bias)(x)
    x = layers.Dense(40, bias_initializer=bias)(x)
    model = keras.Model(inputs, layers.Dense(32, bias_initializer=bias)(x))
    tflite = to_hybrid(model)
    for op_index in (1, 6, 7):
        tflite = per_tensor_weights(tflite, op_index)
    return set_asymmetric_inputs(tflite, False, ops={5, 7})


@pytest.fixture(scope="module")
def hybrid_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    from farm.codegen.tflite_reader import parse_tflite

    tflite = _hybrid_model()
    graph = parse_tflite(tflite).main
    ops = {op.index: op for op in graph.operators}
    assert ops[3].opcode == "RESHAPE"
    found = dict(zip([i for i in sorted(ops) if i != 3], hybrid_ops(tflite), strict=True))
    assert found == EXPECTED_OPS, found
    path = tmp_path_factory.mktemp("hybrid") / "user_hybrid.tflite"
    path.write_bytes(tflite)
    inputs = samples(14, (1, 6, 6, 8), n=8)
    return path, inputs, run_reference(tflite, inputs)


@pytest.mark.parametrize("board", ["qemu-m4f", "qemu-m3", "qemu-rv32"])
def test_farm_infer_hybrid_model_matches_tflite_reference(hybrid_case, tmp_path: Path, state_dir: Path, board: str):
    path, inputs, expected = hybrid_case
    got = _farm_infer(path, inputs, board, tmp_path)
    assert got.dtype == np.float32 and got.shape == expected.shape == (8, 1, 32)
    assert_matches_reference(got, expected, f"{path.name} on {board}")
