"""The CNN operator set, compiled for the host with gcc, against the references.

Every case is a small Keras model built to exercise one op family with varied
shapes, paddings, strides, dilations, depth multipliers, broadcasts and fused
activations, converted to the three variants:

- int8 (per-channel and per-tensor weights): every output of every sample
  identical to the tflite-micro interpreter (the farm's bit-exact promise);
- float32 and int8-weights: within FLOAT_TOL (relative to the output range) of
  tf.lite.Interpreter (the kernels sum in TFLM's reference order; TensorFlow's
  optimized kernels sum in another, and TANH / LOGISTIC / SOFTMAX use the
  kernels' own expf).

int8 LOGISTIC, TANH and SOFTMAX are also checked on every possible input value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures_models import compile_host_model, run_host_model

FLOAT_TOL = 2e-5


def _quantize_inputs(tflite: bytes, x: np.ndarray) -> np.ndarray:
    from farm.models.quantization import quantize
    from farm.codegen.tflite_reader import parse_tflite

    graph = parse_tflite(tflite).main
    q = graph.tensors[graph.inputs[0]].quant
    return quantize(x, q.scale, q.zero_point)


def check_model(tmp_path: Path, name: str, model: Any, representative: np.ndarray, inputs: np.ndarray, *,
                per_channel: tuple[bool, ...] = (True, False),
                floats: tuple[str, ...] = ("float32", "int8-weights")) -> dict[str, list[str]]:
    """Convert `model`, run every variant through TFLM / TensorFlow and the host build, assert.

    `inputs` are float samples with the batch of one (N x 1 x ...); `floats` the
    float variants to check (a model without weights has no int8-weights variant).
    Returns the opcodes of each converted variant."""
    from farm.models.convert import to_float32, to_int8, to_int8_weights
    from farm.models.reference import run_tflite, run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    opcodes = {}
    for pc in per_channel:
        tflite = to_int8(model, representative, per_channel=pc)
        variant = f"int8-{'pc' if pc else 'pt'}"
        path = tmp_path / f"{name}-{variant}.tflite"
        path.write_bytes(tflite)
        opcodes[variant] = [op.opcode for op in parse_tflite(tflite).main.operators]
        q_inputs = _quantize_inputs(tflite, inputs)
        expected = run_tflm(tflite, q_inputs, batched=True)
        exe = compile_host_model(path, tmp_path / f"gen-{variant}", name=name, variant="int8")
        got = run_host_model(exe, q_inputs, np.int8, expected.shape[1:])
        diff = np.flatnonzero(got.reshape(-1) != expected.reshape(-1))
        assert diff.size == 0, (f"{name} {variant} {opcodes[variant]}: {diff.size} of {got.size} outputs differ "
                                f"from tflite-micro, e.g. {got.reshape(-1)[diff[:6]]} vs {expected.reshape(-1)[diff[:6]]}")
    converters = {"float32": to_float32, "int8-weights": to_int8_weights}
    for variant in floats:
        tflite = converters[variant](model)
        path = tmp_path / f"{name}-{variant}.tflite"
        path.write_bytes(tflite)
        opcodes[variant] = [op.opcode for op in parse_tflite(tflite).main.operators]
        expected = run_tflite(tflite, inputs.astype(np.float32), batched=True)
        exe = compile_host_model(path, tmp_path / f"gen-{variant}", name=name, variant=variant)
        got = run_host_model(exe, inputs.astype(np.float32), np.float32, expected.shape[1:])
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(got, expected, rtol=0, atol=FLOAT_TOL * scale, err_msg=f"{name} {variant}")
    return opcodes


def _data(seed: int, shape: tuple[int, ...], n_rep: int = 48, n_test: int = 24, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    rep = rng.normal(0.0, spread, size=(n_rep, *shape)).astype(np.float32)
    # test inputs a little beyond the calibrated range, so the clamps are exercised too
    test = rng.normal(0.0, 1.3 * spread, size=(n_test, 1, *shape)).astype(np.float32)
    return rep, test


def _keras(seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return keras


def _random_bias(keras: Any) -> Any:
    return keras.initializers.RandomNormal(stddev=0.3)


# --------------------------------------------------------------------------- #
# CONV_2D
# --------------------------------------------------------------------------- #

#: (input h, w, c), [(filters, kernel, strides, padding, dilation, activation), ...]
CONV_CASES = {
    "same-stride1-relu": ((9, 8, 3), [(6, 3, 1, "same", 1, "relu"), (5, 3, 1, "same", 1, None)]),
    "valid-stride2-relu6": ((11, 10, 2), [(7, (3, 2), 2, "valid", 1, "relu6"), (4, 1, 1, "valid", 1, None)]),
    "same-stride2-odd": ((10, 7, 4), [(8, 3, 2, "same", 1, None), (8, (5, 3), (2, 1), "same", 1, "relu")]),
    "dilated": ((12, 12, 3), [(6, 3, 1, "same", 2, "relu"), (5, (3, 2), 1, "valid", (2, 3), None)]),
    "kws-first-layer": ((49, 10, 1), [(16, (10, 4), 2, "same", 1, "relu")]),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d(case, tmp_path):
    shape, layers = CONV_CASES[case]
    keras = _keras(10 + list(CONV_CASES).index(case))
    x = inputs = keras.Input(shape, batch_size=1)
    for filters, kernel, strides, padding, dilation, act in layers:
        x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                                activation=act, bias_initializer=_random_bias(keras))(x)
    rep, test = _data(1, shape)
    ops = check_model(tmp_path, f"conv-{case}", keras.Model(inputs, x), rep, test)
    assert set(ops["int8-pc"]) == {"CONV_2D"} and ops["int8-weights"].count("DEQUANTIZE") == len(layers)


# --------------------------------------------------------------------------- #
# DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------- #

#: (input shape, kernel, strides, padding, depth multiplier, dilation, activation)
DEPTHWISE_CASES = {
    "dm1-same": ((8, 9, 4), 3, 1, "same", 1, 1, "relu"),
    "dm2-valid-stride2": ((11, 9, 3), (3, 2), 2, "valid", 2, 1, None),
    "dm3-same-stride2": ((9, 10, 2), 3, 2, "same", 3, 1, "relu6"),
    "dm1-dilated": ((12, 11, 5), 3, 1, "same", 1, 2, None),
    "dm4-single-channel": ((7, 7, 1), (2, 3), (1, 2), "same", 4, 1, None),
}


@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
def test_depthwise_conv2d(case, tmp_path):
    shape, kernel, strides, padding, multiplier, dilation, act = DEPTHWISE_CASES[case]
    keras = _keras(20 + list(DEPTHWISE_CASES).index(case))
    inputs = keras.Input(shape, batch_size=1)
    x = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, depth_multiplier=multiplier,
                                     dilation_rate=dilation, activation=act,
                                     bias_initializer=_random_bias(keras))(inputs)
    rep, test = _data(2, shape)
    ops = check_model(tmp_path, f"dw-{case}", keras.Model(inputs, x), rep, test)
    assert ops["int8-pc"] == ["DEPTHWISE_CONV_2D"]


# --------------------------------------------------------------------------- #
# Pooling and MEAN
# --------------------------------------------------------------------------- #

def test_pooling(tmp_path):
    keras = _keras(30)
    layers = keras.layers
    inputs = keras.Input((11, 9, 3), batch_size=1)
    a = layers.AveragePooling2D(3, strides=2, padding="same")(inputs)  # windows clipped at the border
    a = layers.MaxPooling2D((2, 3), strides=(1, 2), padding="valid")(a)
    b = layers.MaxPooling2D(3, strides=2, padding="same")(inputs)
    b = layers.AveragePooling2D((2, 4), strides=1, padding="valid")(b)
    out = layers.Concatenate()([a, b])
    rep, test = _data(3, (11, 9, 3))
    ops = check_model(tmp_path, "pooling", keras.Model(inputs, out), rep, test, floats=("float32",))
    assert {"AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"} <= set(ops["int8-pc"])


def test_pooling_with_fused_activation(tmp_path):
    """Conv then pool: the converter may fuse a ReLU into the pool."""
    keras = _keras(31)
    layers = keras.layers
    inputs = keras.Input((8, 8, 2), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", bias_initializer=_random_bias(keras))(inputs)
    x = layers.AveragePooling2D(2)(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(3, 1)(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    rep, test = _data(4, (8, 8, 2))
    check_model(tmp_path, "pool-act", keras.Model(inputs, x), rep, test)


def test_mean(tmp_path):
    import keras as _k

    keras = _keras(32)
    layers = keras.layers
    inputs = keras.Input((7, 6, 5), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=_random_bias(keras))(inputs)
    gap = layers.GlobalAveragePooling2D()(x)  # MEAN over axes [1, 2]
    gap_keep = layers.GlobalAveragePooling2D(keepdims=True)(x)
    row_mean = layers.Lambda(lambda t: _k.ops.mean(t, axis=2))(x)  # MEAN over [2]
    depth_mean = layers.Lambda(lambda t: _k.ops.mean(t, axis=-1))(x)  # MEAN over [3]
    out = layers.Concatenate()([gap, layers.Flatten()(gap_keep), layers.Flatten()(row_mean),
                                layers.Flatten()(depth_mean)])
    rep, test = _data(5, (7, 6, 5))
    ops = check_model(tmp_path, "mean", keras.Model(inputs, out), rep, test)
    assert ops["int8-pc"].count("MEAN") == 4


# --------------------------------------------------------------------------- #
# ADD, MUL (residual, broadcast, own input scales)
# --------------------------------------------------------------------------- #

def test_residual_add_and_broadcast_mul(tmp_path):
    keras = _keras(40)
    layers = keras.layers
    inputs = keras.Input((8, 8, 6), batch_size=1)
    y = layers.Conv2D(6, 3, padding="same", activation="relu", bias_initializer=_random_bias(keras))(inputs)
    y = layers.Conv2D(6, 3, padding="same", bias_initializer=_random_bias(keras))(y)
    x = layers.ReLU()(layers.Add()([inputs, y]))  # residual ADD: inputs with their own scales, fused ReLU
    z = layers.Conv2D(6, 1, strides=2, bias_initializer=_random_bias(keras))(x)
    w = layers.Conv2D(6, 3, strides=2, padding="same", bias_initializer=_random_bias(keras))(x)
    s = layers.Add()([z, w])
    # squeeze-and-excite: MUL of a 4x4x6 map by a 1x1x6 gate (broadcast)
    gate = layers.GlobalAveragePooling2D(keepdims=True)(s)
    gate = layers.Conv2D(6, 1, activation="sigmoid", bias_initializer=_random_bias(keras))(gate)
    out = layers.Multiply()([s, gate])
    out = layers.Multiply()([out, out])  # the same tensor twice
    rep, test = _data(6, (8, 8, 6))
    ops = check_model(tmp_path, "add-mul", keras.Model(inputs, out), rep, test)
    assert ops["int8-pc"].count("ADD") == 2 and ops["int8-pc"].count("MUL") == 2


def test_add_mul_with_constant_and_row_broadcast(tmp_path):
    import keras as _k

    keras = _keras(41)
    layers = keras.layers
    inputs = keras.Input((5, 4, 3), batch_size=1)
    const = np.linspace(-1.0, 1.0, 3 * 4).reshape(1, 1, 4, 3).astype(np.float32)
    a = layers.Lambda(lambda t: t + _k.ops.convert_to_tensor(const))(inputs)  # broadcast over h
    rows = layers.Lambda(lambda t: _k.ops.mean(t, axis=2, keepdims=True))(inputs)  # 5x1x3
    b = layers.Multiply()([a, rows])  # broadcast over w
    c = layers.Add()([b, layers.Lambda(lambda t: t * 0.5)(inputs)])
    rep, test = _data(7, (5, 4, 3))
    check_model(tmp_path, "broadcast", keras.Model(inputs, c), rep, test, per_channel=(True,), floats=("float32",))


# --------------------------------------------------------------------------- #
# Data movement: PAD, CONCATENATION, RESHAPE
# --------------------------------------------------------------------------- #

def test_pad_concat_reshape(tmp_path):
    keras = _keras(50)
    layers = keras.layers
    inputs = keras.Input((6, 5, 3), batch_size=1)
    a = layers.ZeroPadding2D(((1, 2), (2, 0)))(inputs)
    a = layers.Conv2D(4, 3, bias_initializer=_random_bias(keras))(a)  # 7x5x4
    b = layers.Conv2D(2, (2, 1), padding="valid", bias_initializer=_random_bias(keras))(
        layers.ZeroPadding2D(((1, 1), (0, 0)))(inputs))  # 7x5x2
    c = layers.Concatenate(axis=-1)([a, b])  # 7x5x6
    d = layers.Concatenate(axis=1)([c, layers.Conv2D(6, 1, bias_initializer=_random_bias(keras))(c)])  # 14x5x6
    e = layers.Reshape((14 * 5, 6))(d)
    f = layers.Concatenate(axis=1)([e, e])
    out = layers.Dense(5, bias_initializer=_random_bias(keras))(layers.Flatten()(f))
    rep, test = _data(8, (6, 5, 3))
    ops = check_model(tmp_path, "pad-concat", keras.Model(inputs, out), rep, test)
    assert {"PAD", "CONCATENATION", "RESHAPE"} <= set(ops["int8-pc"])


# --------------------------------------------------------------------------- #
# Activations
# --------------------------------------------------------------------------- #

def test_standalone_activations(tmp_path):
    keras = _keras(60)
    layers = keras.layers
    inputs = keras.Input((4, 4, 3), batch_size=1)
    r6 = layers.ReLU(max_value=6.0)(inputs)  # nothing to fuse it into: RELU6 of the input
    x = layers.Conv2D(6, 3, padding="same", bias_initializer=_random_bias(keras))(r6)
    s = layers.Activation("sigmoid")(x)
    t = layers.Activation("tanh")(x)
    c = layers.Concatenate()([s, t, x])
    r = layers.ReLU()(c)  # after a concatenation: not fused
    out = layers.Softmax()(layers.Dense(10, bias_initializer=_random_bias(keras))(layers.Flatten()(r)))
    rep, test = _data(9, (4, 4, 3), spread=3.0)
    ops = check_model(tmp_path, "activations", keras.Model(inputs, out), rep, test)
    assert {"RELU6", "RELU", "LOGISTIC", "TANH", "SOFTMAX"} <= set(ops["int8-pc"])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("spread", [0.05, 1.0, 9.0])
def test_nonlinear_every_int8_input(activation, spread, tmp_path):
    """The activation right after the input: fed all 256 int8 values (and, for
    SOFTMAX, rows of random and extreme values), for small and large input scales."""
    from farm.models.convert import to_int8
    from farm.models.reference import run_tflm

    keras = _keras(61)
    inputs = keras.Input((16,), batch_size=1)
    out = keras.layers.Softmax()(inputs) if activation == "softmax" else keras.layers.Activation(activation)(inputs)
    rep = np.random.default_rng(10).uniform(-spread, spread, size=(64, 16)).astype(np.float32)
    rep[0, 0], rep[1, 0] = -spread, spread
    tflite = to_int8(keras.Model(inputs, out), rep)
    path = tmp_path / f"{activation}.tflite"
    path.write_bytes(tflite)
    every = np.arange(-128, 128, dtype=np.int8).reshape(16, 16)
    rows = np.random.default_rng(11).integers(-128, 128, size=(64, 16), dtype=np.int64).astype(np.int8)
    rows[:8] = np.array([[127] + [-128] * 15, [0] * 16, [-128] * 16, [127] * 16,
                         list(range(-128, 128, 16)), [5, 6] * 8, [-3] * 15 + [120], [127, 126] * 8], dtype=np.int8)
    samples = np.concatenate([every, rows])
    expected = run_tflm(tflite, samples)
    exe = compile_host_model(path, tmp_path / "gen", name=activation, variant="int8")
    np.testing.assert_array_equal(run_host_model(exe, samples, np.int8, (16,)), expected)


def test_softmax_rows_over_other_axes_and_beta(tmp_path):
    keras = _keras(62)
    inputs = keras.Input((3, 5, 7), batch_size=1)
    x = keras.layers.Conv2D(7, 1, bias_initializer=_random_bias(keras))(inputs)
    out = keras.layers.Softmax(axis=-1)(x)
    rep, test = _data(12, (3, 5, 7), spread=2.0)
    check_model(tmp_path, "softmax-4d", keras.Model(inputs, out), rep, test)


# --------------------------------------------------------------------------- #
# QUANTIZE / DEQUANTIZE
# --------------------------------------------------------------------------- #

def test_float_io_conv_model(tmp_path):
    """Full-integer model with float input and output: QUANTIZE ... DEQUANTIZE."""
    from farm.models.convert import to_int8
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    keras = _keras(70)
    inputs = keras.Input((6, 6, 2), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", bias_initializer=_random_bias(keras))(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    rep, test = _data(13, (6, 6, 2))
    tflite = to_int8(keras.Model(inputs, x), rep, int8_io=False)
    ops = [op.opcode for op in parse_tflite(tflite).main.operators]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    path = tmp_path / "float_io.tflite"
    path.write_bytes(tflite)
    expected = run_tflm(tflite, test, batched=True)
    exe = compile_host_model(path, tmp_path / "gen", name="float_io", variant="int8")
    np.testing.assert_array_equal(run_host_model(exe, test, np.float32, expected.shape[1:]), expected)


def insert_requantize(tflite: bytes, after_op: int, scale_factor: float, zero_point_shift: int) -> bytes:
    """Insert an int8 -> int8 QUANTIZE after operator `after_op` (its output gets a new
    scale and zero point; the consumers read the requantized tensor)."""
    from farm.models.convert import _opcode_index, pack_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    fb = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    sg = fb.subgraphs[0]
    src_index = int(sg.operators[after_op].outputs[0])
    src = sg.tensors[src_index]
    new = schema.TensorT()
    new.shape, new.type, new.name = list(src.shape), src.type, b"requantized"
    fb.buffers.append(schema.BufferT())
    new.buffer = len(fb.buffers) - 1
    q = schema.QuantizationParametersT()
    q.scale = [float(src.quantization.scale[0]) * scale_factor]
    q.zeroPoint = [int(src.quantization.zeroPoint[0]) + zero_point_shift]
    new.quantization = q
    sg.tensors.append(new)
    new_index = len(sg.tensors) - 1
    for op in sg.operators[after_op + 1:]:
        op.inputs = [new_index if int(i) == src_index else int(i) for i in op.inputs]
    quantize = schema.OperatorT()
    quantize.opcodeIndex = _opcode_index(fb, schema.BuiltinOperator.QUANTIZE, create=True)
    quantize.inputs, quantize.outputs = [src_index], [new_index]
    sg.operators.insert(after_op + 1, quantize)
    return pack_model(fb)


@pytest.mark.parametrize("scale_factor,zp_shift", [(1.7, 5), (0.31, -20), (1.0, 3)])
def test_int8_requantize(scale_factor, zp_shift, tmp_path):
    from farm.models.convert import to_int8
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    keras = _keras(71)
    inputs = keras.Input((5, 5, 2), batch_size=1)
    x = keras.layers.Conv2D(3, 3, bias_initializer=_random_bias(keras))(inputs)
    x = keras.layers.Conv2D(4, 1, bias_initializer=_random_bias(keras))(x)
    rep, test = _data(14, (5, 5, 2))
    tflite = insert_requantize(to_int8(keras.Model(inputs, x), rep), 0, scale_factor, zp_shift)
    assert [op.opcode for op in parse_tflite(tflite).main.operators] == ["CONV_2D", "QUANTIZE", "CONV_2D"]
    path = tmp_path / "requant.tflite"
    path.write_bytes(tflite)
    q_test = _quantize_inputs(tflite, test)
    expected = run_tflm(tflite, q_test, batched=True)
    exe = compile_host_model(path, tmp_path / "gen", name="requant", variant="int8")
    np.testing.assert_array_equal(run_host_model(exe, q_test, np.int8, expected.shape[1:]), expected)


# --------------------------------------------------------------------------- #
# Random mixed models
# --------------------------------------------------------------------------- #

def _random_block(keras: Any, rng: np.random.Generator, x: Any) -> Any:
    layers = keras.layers
    kind = rng.choice(["conv", "dw", "pool", "residual", "concat", "pad"])
    channels = int(x.shape[-1])
    act = rng.choice([None, "relu", "relu6"])
    if kind == "conv":
        return layers.Conv2D(int(rng.integers(2, 9)), int(rng.choice([1, 3])), strides=int(rng.choice([1, 2])),
                             padding=str(rng.choice(["same", "valid"])) if x.shape[1] > 3 else "same",
                             activation=act, bias_initializer=_random_bias(keras))(x)
    if kind == "dw":
        return layers.DepthwiseConv2D(3, depth_multiplier=int(rng.integers(1, 3)), padding="same",
                                      strides=int(rng.choice([1, 2])), activation=act,
                                      bias_initializer=_random_bias(keras))(x)
    if kind == "pool":
        pool = layers.MaxPooling2D if rng.random() < 0.5 else layers.AveragePooling2D
        return pool(2, padding="same")(x)
    if kind == "residual":
        y = layers.Conv2D(channels, 3, padding="same", activation="relu", bias_initializer=_random_bias(keras))(x)
        return layers.Add()([x, y])
    if kind == "concat":
        y = layers.Conv2D(int(rng.integers(1, 5)), 1, bias_initializer=_random_bias(keras))(x)
        return layers.Concatenate()([x, y])
    return layers.ZeroPadding2D(int(rng.integers(1, 3)))(x)


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_random_mixed_models(seed, tmp_path):
    keras = _keras(seed)
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(8, 14)), int(rng.integers(8, 14)), int(rng.integers(1, 4)))
    inputs = keras.Input(shape, batch_size=1)
    x = inputs
    for _ in range(5):
        x = _random_block(keras, rng, x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Softmax()(keras.layers.Dense(6, bias_initializer=_random_bias(keras))(x))
    rep, test = _data(seed, shape)
    check_model(tmp_path, f"random{seed}", keras.Model(inputs, out), rep, test)
