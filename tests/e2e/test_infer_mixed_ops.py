"""Acceptance: `farm infer` on a user's int8 .tflite built from a mix of the supported
operators (paddings, strides, dilations, depth multipliers, a residual ADD,
concatenations, ...) gives outputs identical to tflite-micro's, on an emulated board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


REPO = Path(__file__).resolve().parents[2]


def _farm_infer(path: Path, samples: np.ndarray, board: str, tmp_path: Path) -> np.ndarray:
    """`farm infer` of the .tflite at `path` on `board`: the outputs it saved."""
    np.save(tmp_path / "in.npy", samples)
    proc = subprocess.run([sys.executable, "-m", "farm", "infer", str(path), "--device", board,
                           "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy")],
                          cwd=REPO, capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "out.npy")


def _mixed_model():
    import keras

    keras.utils.set_random_seed(7)
    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.3)
    inputs = keras.Input((14, 12, 3), batch_size=1)
    x = layers.ReLU(max_value=6.0)(inputs)
    x = layers.ZeroPadding2D(((1, 0), (2, 1)))(x)
    x = layers.Conv2D(8, 3, strides=2, padding="valid", activation="relu", bias_initializer=bias)(x)
    d = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", bias_initializer=bias)(x)
    d = layers.Conv2D(8, 1, padding="same", dilation_rate=1, bias_initializer=bias)(d)
    x = layers.Add()([x, d])  # residual
    e = layers.Conv2D(6, 3, padding="same", dilation_rate=2, activation="tanh", bias_initializer=bias)(x)
    f = layers.MaxPooling2D(2, strides=1, padding="same")(x)
    x = layers.Concatenate()([e, f])
    g = layers.AveragePooling2D(2, padding="same")(x)
    gate = layers.Conv2D(14, 1, activation="sigmoid", bias_initializer=bias)(
        layers.GlobalAveragePooling2D(keepdims=True)(g))
    x = layers.Multiply()([g, gate])
    x = layers.Flatten()(x)
    out = layers.Softmax()(layers.Dense(5, bias_initializer=bias)(x))
    return keras.Model(inputs, out)


@pytest.mark.parametrize("board", ["qemu-m4f", "qemu-m3"])  # the optimized kernels' DSP and portable paths
def test_farm_infer_mixed_int8_model_identical_to_tflite_micro(tmp_path: Path, state_dir: Path, board: str):
    from farm.models.convert import to_int8
    from farm.models.quantization import quantize
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    model = _mixed_model()
    rng = np.random.default_rng(8)
    tflite = to_int8(model, rng.normal(0, 1.5, size=(48, 14, 12, 3)).astype(np.float32))
    graph = parse_tflite(tflite).main
    ops = {op.opcode for op in graph.operators}
    assert {"RELU6", "PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "CONCATENATION",
            "AVERAGE_POOL_2D", "MEAN", "LOGISTIC", "MUL", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"} <= ops, ops
    path = tmp_path / "user_mixed.tflite"
    path.write_bytes(tflite)
    q = graph.tensors[graph.inputs[0]].quant
    samples = quantize(rng.normal(0, 2.0, size=(12, 14, 12, 3)).astype(np.float32), q.scale, q.zero_point)

    from farm.codegen import generate

    fast = {op for op in generate(path, tmp_path / "gen", name="mixed", variant="user").ops if op.endswith("_fast")}
    assert fast == {"conv2d_s8_fast", "conv2d_1x1_s8_fast", "depthwise_conv2d_s8_fast", "fully_connected_s8_fast",
                    "add_s8_fast"}
    got = _farm_infer(path, samples, board, tmp_path)
    expected = run_tflm(tflite, samples)
    assert got.dtype == np.int8 and got.shape == expected.shape == (12, 5)
    np.testing.assert_array_equal(got, expected)


def _fast_kernel_shapes_model():
    """One of each optimized-kernel shape: im2col 10x4/2 (KWS's first layer), depthwise 3x3
    with multiplier 1 (interior and border paths) and 2, pointwise 1x1 with an odd channel
    count, a dilated 3x3, and a fully connected layer whose depth is not a multiple of 4."""
    import keras

    keras.utils.set_random_seed(21)
    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.3)
    inputs = keras.Input((25, 10, 1), batch_size=1)
    x = layers.Conv2D(8, (10, 4), strides=2, padding="same", activation="relu", bias_initializer=bias)(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer=bias)(x)
    x = layers.Conv2D(11, 1, activation="relu", bias_initializer=bias)(x)
    x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same", bias_initializer=bias)(x)
    x = layers.Conv2D(5, 3, dilation_rate=2, padding="same", activation="relu6", bias_initializer=bias)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(7, bias_initializer=bias)(x))


@pytest.mark.parametrize("board", ["qemu-m4f", "qemu-m3"])
def test_fast_kernel_shapes_identical_to_tflite_micro_on_board(tmp_path: Path, state_dir: Path, board: str):
    from farm.codegen import generate
    from farm.models.convert import to_int8
    from farm.models.quantization import quantize
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    rng = np.random.default_rng(22)
    tflite = to_int8(_fast_kernel_shapes_model(), rng.normal(0, 1.0, size=(32, 25, 10, 1)).astype(np.float32))
    path = tmp_path / "fast_shapes.tflite"
    path.write_bytes(tflite)
    gen = generate(path, tmp_path / "gen", name="fast_shapes", variant="user")
    assert [op for op in gen.ops if op != "quantize"] == [
        "conv2d_s8_fast", "depthwise_conv2d_s8_fast", "conv2d_1x1_s8_fast", "depthwise_conv2d_s8_fast",
        "conv2d_s8_fast", "fully_connected_s8_fast"], gen.ops
    q = parse_tflite(tflite).main.tensors[parse_tflite(tflite).main.inputs[0]].quant
    samples = quantize(rng.normal(0, 1.5, size=(6, 25, 10, 1)).astype(np.float32), q.scale, q.zero_point)
    got = _farm_infer(path, samples, board, tmp_path)
    expected = run_tflm(tflite, samples)
    assert got.shape == expected.shape == (6, 7)
    np.testing.assert_array_equal(got, expected)
