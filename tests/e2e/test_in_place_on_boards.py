"""Acceptance: a depthwise-separable int8 model whose pointwise layers run in place
(each over its input's buffer, growing, shrinking, odd channel counts) gives outputs
identical to tflite-micro's on the emulated boards: the DSP path (qemu-m4f, the
pixels sign-extended into `ext` before anything is written) and the portable one
(qemu-m3, the pixels copied to scratch first)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _separable_model():
    import keras

    keras.utils.set_random_seed(41)
    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.3)
    inputs = keras.Input((12, 6, 2), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=bias)(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", bias_initializer=bias)(x)  # the pointwise layers are the subject
    x = layers.Conv2D(12, 1, activation="relu", bias_initializer=bias)(x)  # grows: backward, no copy on DSP
    x = layers.Conv2D(9, 1, bias_initializer=bias)(x)  # shrinks, odd rows: copied
    x = layers.Conv2D(7, 1, activation="relu6", bias_initializer=bias)(x)  # depth 9: copied
    x = layers.DepthwiseConv2D(3, padding="same", bias_initializer=bias)(x)
    x = layers.Conv2D(16, 1, activation="relu", bias_initializer=bias)(x)
    x = layers.Conv2D(16, 1, bias_initializer=bias)(x)  # the same size: forward
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(5, bias_initializer=bias)(x))


@pytest.mark.parametrize("board", ["qemu-m4f", "qemu-m3"])
def test_pointwise_in_place_identical_to_tflite_micro_on_board(tmp_path: Path, state_dir: Path, board: str):
    from farm.codegen.generator import plan_for
    from farm.codegen.lowering import lower
    from farm.codegen.tflite_reader import parse_tflite, read_tflite
    from farm.models.convert import to_int8
    from farm.models.quantization import quantize
    from farm.models.reference import run_tflm

    rng = np.random.default_rng(42)
    tflite = to_int8(_separable_model(), rng.normal(0, 1.0, size=(32, 12, 6, 2)).astype(np.float32))
    path = tmp_path / "separable.tflite"
    path.write_bytes(tflite)
    lowered = lower(read_tflite(path))
    plan = plan_for(lowered)
    pointwise = [i for i, s in enumerate(lowered.steps) if s.kernel == "conv2d_1x1_s8_fast"]
    assert len(pointwise) == 5
    # the shrinking and same-size ones always run in place; the growing ones where it pays (here: all)
    assert set(pointwise) <= {step for step, _, _ in plan.in_place}, plan.in_place
    q = parse_tflite(tflite).main.tensors[parse_tflite(tflite).main.inputs[0]].quant
    samples = quantize(rng.normal(0, 1.5, size=(6, 12, 6, 2)).astype(np.float32), q.scale, q.zero_point)
    np.save(tmp_path / "in.npy", samples)
    proc = subprocess.run([sys.executable, "-m", "farm", "infer", str(path), "--device", board,
                           "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy")],
                          cwd=REPO, capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npy")
    expected = run_tflm(tflite, samples)
    assert got.shape == expected.shape == (6, 5)
    np.testing.assert_array_equal(got, expected)
