"""Convert a trained Keras model into the three .tflite variants.

- ``float32``: the plain TFLite converter.
- ``int8``: full-integer post-training quantization (int8 weights, activations,
  input and output; int32 biases), calibrated on a representative dataset.
- ``int8-weights`` (Strategy A): int8 weights, float compute. TensorFlow's own
  dynamic-range quantizer is not used: it skips weight tensors under 1024
  elements (so a small model stays all-float), and where it does quantize it
  emits *hybrid* ops that quantize the activations on the fly (integer
  compute, which TFLM does not run). Instead the float model is rewritten
  (`weights_to_int8`): the float weight tensor of every FULLY_CONNECTED,
  CONV_2D and DEPTHWISE_CONV_2D is replaced by an int8 constant with a
  symmetric per-tensor scale (max|w| / 127), followed by a DEQUANTIZE op that
  produces the float weights the (unchanged, float) op reads. tf.lite.Interpreter
  runs this as is; the code generator fuses the DEQUANTIZE into the op (kernels
  ``*_f32_w8``: weights dequantized in float on the fly).

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import flatbuffers
import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

#: Bump when the conversion changes in a way the source hash would not show.
CONVERTER_VERSION = 2

#: Alignment of constant buffers in the files we write (TFLite's own convention).
_BUFFER_ALIGNMENT = 16


log = logging.getLogger(__name__)


class ConversionError(RuntimeError):
    """The TFLite converter (or our rewrite) could not produce the variant."""


def run_converter(converter: Any) -> bytes:
    """converter.convert(), with Keras' export chatter ("Saved artifact at ...")
    kept off stdout (where `farm models --json` writes) and sent to the debug log."""
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        result = converter.convert()
    if chatter.getvalue().strip():
        log.debug("TFLite converter output:\n%s", chatter.getvalue())
    return bytes(result)


def to_float32(keras_model: Any) -> bytes:
    """The plain float32 conversion of `keras_model`."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    return run_converter(converter)


def to_int8(keras_model: Any, representative: np.ndarray, *, per_channel: bool = True,
            int8_io: bool = True) -> bytes:
    """Full-integer int8 conversion, by default with int8 input and output.

    `representative` is an array of float inputs, each the model's input shape
    without the batch of one (or with it; the batch axis is added when missing),
    fed one by one for calibration. `per_channel=False` asks the converter for
    per-tensor weight scales (FULLY_CONNECTED and convolutions); `int8_io=False` keeps float input
    and output (the model then starts with QUANTIZE and ends with DEQUANTIZE).
    """
    import tensorflow as tf

    samples = np.asarray(representative, dtype=np.float32)
    if samples.ndim < 1 or samples.shape[0] == 0:
        raise ConversionError("int8 conversion needs a non-empty representative dataset")

    batch_shape = tuple(keras_model.inputs[0].shape)

    def dataset() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample if sample.shape == batch_shape else sample[np.newaxis, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel = True  # noqa: SLF001  (convolutions)
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True  # noqa: SLF001
    return run_converter(converter)


def to_int8_weights(keras_model: Any, *, per_channel: bool = False) -> bytes:
    """Strategy A: the float32 model with int8 weights (see module doc).

    Per-tensor by default: TFLM's DEQUANTIZE kernel is per-tensor only (it would
    apply the first channel's scale to every channel of a per-channel tensor),
    so only per-tensor weights give a file that TFLite and TFLM both run right.
    """
    return weights_to_int8(to_float32(keras_model), per_channel=per_channel)


#: variant name -> converter(keras_model, representative, per_channel) -> .tflite bytes
CONVERTERS: dict[str, Callable[[Any, np.ndarray, bool], bytes]] = {
    "float32": lambda model, rep, per_channel: to_float32(model),
    "int8-weights": lambda model, rep, per_channel: to_int8_weights(model),
    "int8": lambda model, rep, per_channel: to_int8(model, rep, per_channel=per_channel),
}


def convert(keras_model: Any, variant: str, representative: np.ndarray, *, per_channel: bool = True) -> bytes:
    """The .tflite bytes of `variant`. `per_channel` applies to the int8 variant's
    FULLY_CONNECTED weights (int8-weights is always per-tensor, see `to_int8_weights`)."""
    try:
        converter = CONVERTERS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(CONVERTERS)})") from None
    return converter(keras_model, representative, per_channel)


# --------------------------------------------------------------------------- #
# int8-weights rewrite
# --------------------------------------------------------------------------- #

#: ops whose input 1 is a weight tensor -> the axis of its output channels
WEIGHT_OPS: dict[int, int] = {
    schema.BuiltinOperator.FULLY_CONNECTED: 0,
    schema.BuiltinOperator.CONV_2D: 0,
    schema.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
}


def quantize_symmetric(weights: np.ndarray, *, per_channel: bool, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization of a weight tensor.

    Returns (q int8 in [-127, 127], scales float32: one per index of `axis`, or
    [1]) with weights ~= scale * q. A channel that is all zero gets scale 1.
    """
    w = np.asarray(weights, dtype=np.float32)
    if per_channel:
        moved = np.moveaxis(w, axis, 0)
        max_abs = np.max(np.abs(moved.reshape(moved.shape[0], -1)), axis=1)
    else:
        max_abs = np.array([np.max(np.abs(w))], dtype=np.float32)
    scales = np.where(max_abs > 0, max_abs / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


def weights_to_int8(float_tflite: bytes, *, per_channel: bool = False) -> bytes:
    """Rewrite a float .tflite so that every FULLY_CONNECTED, CONV_2D and
    DEPTHWISE_CONV_2D reads its weights from an int8 constant through a DEQUANTIZE.

    Raises ConversionError if such a weight tensor is not a float constant (then
    the variant would not really carry int8 weights), or if there is none.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(float_tflite), 0)
    weight_codes = {code: axis for builtin, axis in WEIGHT_OPS.items()
                    if (code := _opcode_index(model, builtin, create=False)) is not None}
    if not weight_codes:
        raise ConversionError("model has no FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D operator: "
                              "no weights to quantize")
    dq_code = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE, create=True,
                            version=5 if per_channel else 2)

    for sg_index, sg in enumerate(model.subgraphs):
        rewritten: dict[int, int] = {}  # float weight tensor -> DEQUANTIZE inserted for it
        new_ops = []
        for op_index, op in enumerate(sg.operators or []):
            if op.opcodeIndex in weight_codes:
                w_index = int(op.inputs[1])
                if w_index not in rewritten:
                    new_ops.append(_dequantize_weights(model, sg, w_index, dq_code, per_channel,
                                                       axis=weight_codes[op.opcodeIndex],
                                                       where=f"subgraph {sg_index} operator #{op_index}"))
                    rewritten[w_index] = len(new_ops) - 1
            new_ops.append(op)
        sg.operators = new_ops
    _drop_unreferenced_buffers(model)
    return pack_model(model)


def pack_model(model: Any) -> bytes:
    """Serialize a schema ModelT to .tflite bytes, constant buffers 16-byte aligned."""
    builder = flatbuffers.Builder(1 << 16)
    model.buffers = [_AlignedBufferT.from_buffer(b) for b in (model.buffers or [])]
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _drop_unreferenced_buffers(model: Any) -> None:
    used = {t.buffer for sg in model.subgraphs for t in (sg.tensors or [])}
    used |= {m.buffer for m in (model.metadata or [])}
    used |= set(model.metadataBuffer or [])
    for i, buf in enumerate(model.buffers):
        if i not in used:
            buf.data = None


def _opcode_index(model: Any, builtin: int, *, create: bool, version: int = 1) -> int | None:
    for i, code in enumerate(model.operatorCodes or []):
        if max(code.deprecatedBuiltinCode, code.builtinCode) == builtin:
            code.version = max(code.version, version)
            return i
    if not create:
        return None
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _dequantize_weights(model: Any, sg: Any, w_index: int, dq_code: int, per_channel: bool,
                        axis: int, where: str) -> Any:
    tensor = sg.tensors[w_index]
    buf = model.buffers[tensor.buffer]
    if tensor.type != schema.TensorType.FLOAT32 or buf.data is None or len(buf.data) == 0:
        raise ConversionError(
            f"{where}: weights {tensor.name!r} are not a float32 constant; "
            "cannot make an int8-weights model of it")
    shape = [int(d) for d in tensor.shape]
    weights = np.frombuffer(bytes(np.asarray(buf.data, dtype=np.uint8)), dtype="<f4").reshape(shape)
    q, scales = quantize_symmetric(weights, per_channel=per_channel, axis=axis)

    q_buffer = schema.BufferT()
    q_buffer.data = np.frombuffer(q.tobytes(), dtype=np.uint8)
    model.buffers.append(q_buffer)

    quant = schema.QuantizationParametersT()
    quant.scale = scales.tolist()
    quant.zeroPoint = [0] * scales.size
    quant.quantizedDimension = axis if per_channel else 0

    q_tensor = schema.TensorT()
    q_tensor.shape = list(shape)
    q_tensor.type = schema.TensorType.INT8
    q_tensor.buffer = len(model.buffers) - 1
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
    q_tensor.name = f"{name}_int8"
    q_tensor.quantization = quant
    sg.tensors.append(q_tensor)

    # The float tensor stays (same index, same consumers) but is now computed;
    # its old buffer is dropped by _drop_unreferenced_buffers if nothing else uses it.
    model.buffers.append(schema.BufferT())
    tensor.buffer = len(model.buffers) - 1

    op = schema.OperatorT()
    op.opcodeIndex = dq_code
    op.inputs = [len(sg.tensors) - 1]
    op.outputs = [w_index]
    op.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
    op.builtinOptions = schema.DequantizeOptionsT()
    return op


class _AlignedBufferT(schema.BufferT):
    """A BufferT whose data vector is written 16-byte aligned."""

    @classmethod
    def from_buffer(cls, buf: Any) -> "_AlignedBufferT":
        aligned = cls()
        aligned.data = buf.data
        aligned.offset = buf.offset
        aligned.size = buf.size
        return aligned

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (flatbuffers API)
        data_offset = None
        if self.data is not None and len(self.data) > 0:
            payload = bytes(np.asarray(self.data, dtype=np.uint8))
            builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data_offset = builder.EndVector()
        schema.BufferStart(builder)
        if data_offset is not None:
            schema.BufferAddData(builder, data_offset)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)
