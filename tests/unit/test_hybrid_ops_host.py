"""Hybrid (dynamic-range) FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D, compiled
for the host with gcc, against tf.lite.Interpreter with the BUILTIN_REF kernels.

Each case is a small Keras model converted as the seed's "Model 2" is
(Optimize.DEFAULT, no representative dataset; tests/hybrid_models.py), in every
form TensorFlow Lite has for it: FULLY_CONNECTED with per-channel and per-tensor
weights, each with asymmetric and symmetric input quantization; CONV_2D with
per-channel weights (TensorFlow Lite's asymmetric per-channel kernel) and
per-tensor ones (its symmetric kernel); DEPTHWISE_CONV_2D per channel (its only
kernel). The inputs include the edge cases of the run-time quantization (all
zeros, one sign only, rounding ties, a large range). Outputs must be within the
tolerance stated in tests/hybrid_models.py (RTOL 1e-6 relative + ATOL 1e-6 of
the output range; they are in fact bit-identical).

Hybrid forms with no TensorFlow Lite behaviour to match are refused by operator
name and index before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures_models import compile_host_model, run_host_model
from hybrid_models import (
    assert_matches_reference,
    hybrid_ops,
    rewrite_weights,
    run_reference,
    samples,
    to_hybrid,
)


def _keras(seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return keras


def _bias(keras: Any) -> Any:
    return keras.initializers.RandomNormal(stddev=0.3)


def _check(tmp_path: Path, name: str, tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Host build of `tflite` vs the reference on `inputs`; returns the host outputs."""
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(tflite)
    expected = run_reference(tflite, inputs)
    exe = compile_host_model(path, tmp_path / f"gen-{name}", name="hybrid", variant="user")
    got = run_host_model(exe, inputs, np.float32, expected.shape[1:])
    assert_matches_reference(got, expected, name)
    return got


# --------------------------------------------------------------------------- #
# FULLY_CONNECTED
# --------------------------------------------------------------------------- #

#: input shape (batch of 1 added), [(units, activation, use_bias), ...]
FC_CASES = {
    "relu": ((48,), [(24, "relu", True)]),
    "rows": ((3, 40), [(32, None, True)]),  # three batch rows, each quantized on its own
    "no-bias-relu6": ((40,), [(32, "relu6", False)]),
    "chain": ((36,), [(40, "relu", True), (28, None, True)]),
}


@pytest.mark.parametrize("asymmetric", [True, False], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
@pytest.mark.parametrize("case", list(FC_CASES))
def test_fully_connected(case, per_channel, asymmetric, tmp_path):
    shape, layers = FC_CASES[case]
    keras = _keras(40 + list(FC_CASES).index(case))
    x = inputs = keras.Input(shape, batch_size=1)
    for units, act, use_bias in layers:
        x = keras.layers.Dense(units, activation=act, use_bias=use_bias, bias_initializer=_bias(keras))(x)
    tflite = to_hybrid(keras.Model(inputs, x), per_channel=per_channel, asymmetric_inputs=asymmetric)
    ops = hybrid_ops(tflite)
    assert ops == [("FULLY_CONNECTED", per_channel, asymmetric)] * len(layers), ops
    _check(tmp_path, f"fc-{case}", tflite, samples(1, (1, *shape)))


# --------------------------------------------------------------------------- #
# CONV_2D
# --------------------------------------------------------------------------- #

#: input h, w, c; (filters, kernel, strides, padding, dilation, activation)
CONV_CASES = {
    "same-stride1-relu": ((9, 8, 8), (16, 3, 1, "same", 1, "relu")),
    "valid-stride2-relu6": ((11, 10, 6), (32, (3, 2), 2, "valid", 1, "relu6")),
    "same-stride2-odd": ((10, 7, 4), (32, (5, 3), (2, 1), "same", 1, None)),
    "dilated": ((12, 12, 4), (32, 3, 1, "same", 2, "relu")),
    "pointwise": ((6, 5, 32), (40, 1, 1, "valid", 1, None)),
}


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel-asymmetric", "per-tensor-symmetric"])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d(case, per_channel, tmp_path):
    shape, (filters, kernel, strides, padding, dilation, act) = CONV_CASES[case]
    keras = _keras(50 + list(CONV_CASES).index(case))
    inputs = keras.Input(shape, batch_size=1)
    y = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                            activation=act, bias_initializer=_bias(keras))(inputs)
    tflite = to_hybrid(keras.Model(inputs, y), per_channel=per_channel)
    assert hybrid_ops(tflite) == [("CONV_2D", per_channel, False)]
    _check(tmp_path, f"conv-{case}", tflite, samples(2, (1, *shape)))


def test_conv2d_per_channel_with_equal_scales_runs_the_symmetric_kernel(tmp_path):
    """TensorFlow Lite takes its per-channel kernel only when the scales differ;
    equal per-channel scales run the symmetric per-tensor kernel."""
    keras = _keras(60)
    inputs = keras.Input((9, 8, 8), batch_size=1)
    y = keras.layers.Conv2D(16, 3, padding="same", bias_initializer=_bias(keras))(inputs)
    tflite = to_hybrid(keras.Model(inputs, y))
    tflite = rewrite_weights(tflite, 0, scales=[0.01] * 16)
    from farm.codegen.lowering import lower
    from farm.codegen.tflite_reader import parse_tflite

    step = lower(parse_tflite(tflite)).steps[0]
    assert step.kernel == "conv2d_hybrid_f32_s8" and not step.asymmetric  # type: ignore[attr-defined]
    _check(tmp_path, "conv-equal-scales", tflite, samples(3, (1, 9, 8, 8)))


# --------------------------------------------------------------------------- #
# DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------- #

#: input shape; (kernel, strides, padding, depth multiplier, dilation, activation)
DEPTHWISE_CASES = {
    "dm8-same-relu": ((8, 9, 16), (3, 1, "same", 8, 1, "relu")),
    "dm1-valid-stride2": ((11, 10, 128), ((3, 3), 2, "valid", 1, 1, None)),
    "dm4-dilated-relu6": ((12, 11, 32), (3, 1, "same", 4, 2, "relu6")),
    "dm2-same-stride2-odd": ((9, 10, 48), ((2, 3), (2, 1), "same", 4, 1, None)),
}


@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
def test_depthwise_conv2d(case, tmp_path):
    shape, (kernel, strides, padding, multiplier, dilation, act) = DEPTHWISE_CASES[case]
    keras = _keras(70 + list(DEPTHWISE_CASES).index(case))
    inputs = keras.Input(shape, batch_size=1)
    y = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, depth_multiplier=multiplier,
                                     dilation_rate=dilation, activation=act, bias_initializer=_bias(keras))(inputs)
    tflite = to_hybrid(keras.Model(inputs, y))
    assert hybrid_ops(tflite) == [("DEPTHWISE_CONV_2D", True, False)]
    _check(tmp_path, f"depthwise-{case}", tflite, samples(4, (1, *shape)))


def test_mixed_hybrid_model_with_float_ops_between(tmp_path):
    """Hybrid ops chained with float ones (pooling, ADD, RESHAPE, SOFTMAX) and layers
    that stay float32 (under 1024 weights), sharing the scratch buffer."""
    keras = _keras(80)
    layers = keras.layers
    inputs = keras.Input((10, 10, 4), batch_size=1)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", bias_initializer=_bias(keras))(inputs)
    d = layers.DepthwiseConv2D(3, padding="same", bias_initializer=_bias(keras))(x)  # 288 weights: float32
    d = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=4, bias_initializer=_bias(keras))(d)
    d = layers.Conv2D(32, 1, bias_initializer=_bias(keras))(d)
    x = layers.Add()([x, d])
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(4, 1, bias_initializer=_bias(keras))(x)  # 128 weights: float32
    x = layers.Flatten()(x)
    x = layers.Dense(48, activation="relu", bias_initializer=_bias(keras))(x)
    y = layers.Softmax()(layers.Dense(10)(layers.Dense(32, bias_initializer=_bias(keras))(x)))
    tflite = to_hybrid(keras.Model(inputs, y))
    from farm.codegen.tflite_reader import parse_tflite

    opcodes = [op.opcode for op in parse_tflite(tflite).main.operators]
    assert {"ADD", "MAX_POOL_2D", "RESHAPE", "SOFTMAX"} <= set(opcodes), opcodes
    assert [op for op, _, _ in hybrid_ops(tflite, all_hybrid=False)] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    path = tmp_path / "mixed.tflite"
    path.write_bytes(tflite)
    from farm.codegen import generate

    gen = generate(path, tmp_path / "gen", name="mixed", variant="user")
    assert [k for k in gen.ops if "hybrid" in k] == [
        "conv2d_hybrid_f32_s8", "depthwise_conv2d_hybrid_f32_s8", "conv2d_hybrid_f32_s8",
        "fully_connected_hybrid_f32_s8", "fully_connected_hybrid_f32_s8"], gen.ops
    assert {"depthwise_conv2d_f32", "conv2d_f32", "fully_connected_f32", "add_f32"} <= set(gen.ops), gen.ops
    _check(tmp_path, "mixed", tflite, samples(5, (1, 10, 10, 4)))


# --------------------------------------------------------------------------- #
# what is refused
# --------------------------------------------------------------------------- #


def _refused(tmp_path: Path, tflite: bytes, match: str) -> None:
    from farm.codegen import UnsupportedOperatorError, check_supported

    path = tmp_path / "refused.tflite"
    path.write_bytes(tflite)
    with pytest.raises(UnsupportedOperatorError, match=match):
        check_supported(path)


def test_per_tensor_hybrid_depthwise_refused(tmp_path):
    """TensorFlow Lite's hybrid depthwise kernel reads one scale per channel: with a
    per-tensor scale it reads past it (its outputs are garbage), so there is nothing to match."""
    keras = _keras(90)
    inputs = keras.Input((8, 8, 16), batch_size=1)
    y = keras.layers.DepthwiseConv2D(3, depth_multiplier=8, padding="same")(inputs)
    tflite = to_hybrid(keras.Model(inputs, y), per_channel=False)
    assert hybrid_ops(tflite) == [("DEPTHWISE_CONV_2D", False, False)]
    _refused(tmp_path, tflite, r"operator #0 DEPTHWISE_CONV_2D: hybrid DEPTHWISE_CONV_2D with per-tensor int8 "
                               r"weights #\d+ \(one scale for 128 channels\) is not supported")


def test_hybrid_weights_with_a_zero_point_refused(tmp_path):
    keras = _keras(91)
    inputs = keras.Input((40,), batch_size=1)
    y = keras.layers.Dense(32)(keras.layers.Dense(32)(inputs))
    tflite = rewrite_weights(to_hybrid(keras.Model(inputs, y), per_channel=False), 1, zero_points=[3])
    _refused(tmp_path, tflite, r"operator #1 FULLY_CONNECTED: hybrid FULLY_CONNECTED: int8 weights #\d+ must be "
                               r"symmetric \(zero points 0\)")


def test_hybrid_with_an_int8_output_refused(tmp_path):
    keras = _keras(92)
    inputs = keras.Input((40,), batch_size=1)
    tflite = to_hybrid(keras.Model(inputs, keras.layers.Dense(32)(inputs)))
    from farm.models.convert import pack_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    sg = model.subgraphs[0]
    out = sg.tensors[sg.operators[0].outputs[0]]
    out.type = schema.TensorType.INT8
    quant = schema.QuantizationParametersT()
    quant.scale, quant.zeroPoint = [0.1], [0]
    out.quantization = quant
    _refused(tmp_path, pack_model(model),
             r"operator #0 FULLY_CONNECTED: float32 input with int8 output is not supported")
