"""Hybrid (dynamic-range) test models and their reference, for the hybrid tests.

A hybrid model is what the seed's "Model 2" is: ``TFLiteConverter.from_keras_model``
with ``optimizations=[tf.lite.Optimize.DEFAULT]`` and no representative dataset.
FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D then keep a float32 input and
output and read constant int8 weights (weight tensors of 1024 elements or more;
smaller ones stay float). In TensorFlow 2.21 the weights are per channel by
default (``per_channel=False`` sets the converter's two private switches that
make them per tensor), and FULLY_CONNECTED gets ``asymmetric_quantize_inputs``
set; `set_asymmetric_inputs` rewrites that option in the flatbuffer to get the
symmetric form. The reference is ``tf.lite.Interpreter`` with the BUILTIN_REF
op resolver (TFLM refuses hybrid models).

Tolerance (`assert_matches_reference`): |got - ref| <= RTOL * |ref| + ATOL *
max(1, max |ref|). The kernels do TensorFlow Lite's arithmetic step for step:
the input quantization (same float and double operations, same rounding), an
exact int32 accumulation, and the float rescale and bias in TensorFlow Lite's
order (two float multiplications, one addition, no fused multiply-add: the
firmware builds with -std=c11, where GCC does not contract). Any IEEE-754 core
computes those roundings identically, so outputs are expected bit-identical;
the bound leaves a few float ulps (1 ulp at 1.0 is 1.2e-7) for a compiler that
orders or contracts one of the three float operations differently, and stays
far below what one int8 step of a quantized input moves an output (about
1/127 of the input range times a weight), so a quantization that disagrees
with TensorFlow Lite's fails the test. Measured: every hybrid-only model
bit-identical on the host and on qemu-m4f, qemu-m3 and qemu-rv32; a model that
mixes in float32 ops (float summation order, SOFTMAX's own expf) 1.5e-8.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np

RTOL = 1e-6
ATOL = 1e-6

HYBRID_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def to_hybrid(model: Any, *, per_channel: bool = True, asymmetric_inputs: bool | None = None) -> bytes:
    """The dynamic-range conversion of a Keras model (see module doc)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if not per_channel:
        converter._experimental_disable_per_channel = True  # noqa: SLF001  (convolutions)
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True  # noqa: SLF001
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export chatter
        tflite = bytes(converter.convert())
    if asymmetric_inputs is not None:
        tflite = set_asymmetric_inputs(tflite, asymmetric_inputs)
    return tflite


def _model_t(tflite: bytes) -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)


def set_asymmetric_inputs(tflite: bytes, value: bool, ops: set[int] | None = None) -> bytes:
    """The model with the ``asymmetric_quantize_inputs`` of every FULLY_CONNECTED
    (or of those among operator indices `ops`) set to `value`."""
    from farm.models.convert import pack_model

    model = _model_t(tflite)
    for index, op in enumerate(model.subgraphs[0].operators):
        if hasattr(op.builtinOptions, "asymmetricQuantizeInputs") and (ops is None or index in ops):
            op.builtinOptions.asymmetricQuantizeInputs = value
    return pack_model(model)


def rewrite_weights(tflite: bytes, op_index: int, *, scales: list[float] | None = None,
                    zero_points: list[int] | None = None) -> bytes:
    """The model with the weight quantization of operator `op_index` replaced."""
    from farm.models.convert import pack_model

    model = _model_t(tflite)
    sg = model.subgraphs[0]
    quant = sg.tensors[sg.operators[op_index].inputs[1]].quantization
    if scales is not None:
        quant.scale = list(scales)
    if zero_points is not None:
        quant.zeroPoint = list(zero_points)
    return pack_model(model)


def per_tensor_weights(tflite: bytes, op_index: int) -> bytes:
    """The model with the per-channel int8 weights of operator `op_index` read with one
    scale (the largest): a valid per-tensor hybrid op (other weights in real terms)."""
    from farm.codegen.tflite_reader import parse_tflite

    graph = parse_tflite(tflite).main
    q = graph.tensors[graph.operators[op_index].inputs[1]].quant
    assert q is not None
    return rewrite_weights(tflite, op_index, scales=[float(q.scales.max())], zero_points=[0])


def hybrid_ops(tflite: bytes, *, all_hybrid: bool = True) -> list[tuple[str, bool, bool]]:
    """(opcode, per-channel weights, asymmetric_quantize_inputs) of each hybrid weight op
    (float32 input and output, constant int8 weights); with `all_hybrid`, after checking
    that every weight op is hybrid."""
    from farm.codegen.tflite_reader import parse_tflite

    graph = parse_tflite(tflite).main
    found = []
    for op in graph.operators:
        if op.opcode not in HYBRID_OPS:
            continue
        x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
        hybrid = (x.dtype, w.dtype, y.dtype) == ("float32", "int8", "float32") and w.is_constant
        assert hybrid or not all_hybrid, \
            f"operator #{op.index} {op.opcode} is not hybrid: {x.dtype} x {w.dtype} -> {y.dtype}"
        if not hybrid:
            continue
        assert w.quant is not None
        found.append((op.opcode, w.quant.per_channel, bool(op.options.get("asymmetric_quantize_inputs", False))))
    return found


def run_reference(tflite: bytes, samples: np.ndarray) -> np.ndarray:
    """tf.lite.Interpreter (BUILTIN_REF kernels) on each sample (each the model's full input shape)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(
            model_content=tflite, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for sample in np.asarray(samples, dtype=np.float32):
        interpreter.set_tensor(in_index, sample)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_tensor(out_index)))
    return np.stack(outputs)


def samples(seed: int, shape: tuple[int, ...], n: int = 10) -> np.ndarray:
    """n float inputs of `shape` (batch included): normal ones, and the edge cases of the
    run-time quantization: all zeros, all positive, all negative, values on a quarter grid
    (ties of the rounding), a large range, and one constant nonzero input."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(n, *shape)).astype(np.float32)
    edge = [np.zeros(shape, np.float32), np.abs(x[1]), -np.abs(x[2]) - 0.5, np.round(x[3] * 4) / 4,
            x[4] * 100.0, np.full(shape, 0.75, np.float32)]
    for i, e in enumerate(edge[: max(0, n - 2)]):
        x[i] = e
    return x.astype(np.float32)


def max_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)), initial=0.0))


def assert_matches_reference(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Within the module's tolerance of the reference (see module doc)."""
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * scale,
                               err_msg=f"{what}: max error {max_error(got, expected):.3g}")
