"""Real .tflite files as teams bring them (the test models of
tests/unit/test_files_as_users_bring_them.py and tests/e2e/test_user_files_on_boards.py).

`keras_model()`: CONV_2D, DEPTHWISE_CONV_2D, a Dense of 512 x 400 (200 KiB of int8 weights),
a Dense of 10, a RESHAPE/SOFTMAX tail. `converter(model, representative, io=...)`: the int8
conversion with int8, uint8 or (io=None) float input/output. Rewrites of a converted file:
`with_buffers_after_the_flatbuffer` (the > 2 GB layout) and `as_old_tensorflow_wrote_it`
(the schema of TensorFlow <= 2.3). `user_files(folder)` writes all of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS_DENSE = (8 * 8 * 8, 400)  # the Dense layer: 512 x 400 int8 weights = 200 KiB


def keras_model():
    import keras

    keras.utils.set_random_seed(11)
    layers = keras.layers
    inputs = keras.Input((12, 12, 1), batch_size=1)
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.DepthwiseConv2D(3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(WEIGHTS_DENSE[1], activation="relu")(x)
    x = layers.Dense(10)(x)
    x = layers.Reshape((2, 5))(x)
    return keras.Model(inputs, layers.Softmax()(x))


def converter(model, representative: np.ndarray, *, io: str | None):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def samples():
        for sample in representative:
            yield [sample[np.newaxis, ...].astype(np.float32)]

    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io is not None:
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io)
    return converter


def with_buffers_after_the_flatbuffer(tflite: bytes) -> bytes:
    """The layout of files over 2 GB (and of TF's `_experimental_use_buffer_offset`, which
    its int8 quantizer does not keep): every constant buffer after the flatbuffer, 16-byte
    aligned, named by absolute file offset and size."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    blobs = {}
    for i, buf in enumerate(model.buffers):
        if buf.data is not None and len(buf.data):
            blobs[i] = bytes(np.asarray(buf.data, dtype=np.uint8))
            buf.data, buf.offset, buf.size = None, 1 << 40, len(blobs[i])  # placeholder offset

    def pack() -> bytes:
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    head = pack()  # uint64 offsets: the real ones take the same room as the placeholder
    out = bytearray(head)
    for i, blob in blobs.items():
        out += bytes(-len(out) % 16)
        model.buffers[i].offset = len(out)
        out += blob
    final = pack()
    assert len(final) == len(head)
    return final + bytes(out[len(head):])


def as_old_tensorflow_wrote_it(tflite: bytes) -> bytes:
    """The same model in the schema of TensorFlow <= 2.3: codes only in the int8 field
    (builtin_code absent, i.e. 0), schema version 3, no signature defs, no metadata,
    no shape signatures, no subgraph name, TOCO's description."""
    from farm.models.convert import pack_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    for code in model.operatorCodes:
        assert code.builtinCode < schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
        code.deprecatedBuiltinCode, code.builtinCode = code.builtinCode, 0
    model.version = 3
    model.description = b"TOCO Converted."
    model.signatureDefs = None
    model.metadata = None
    model.metadataBuffer = None
    for subgraph in model.subgraphs:
        subgraph.name = None
        for tensor in subgraph.tensors:
            tensor.shapeSignature = None
            tensor.hasRank = False
    return pack_model(model)


def user_files(folder: Path) -> dict[str, Path]:
    """Every file of this module, converted from one Keras model, written into `folder`,
    with test inputs (float) in folder/inputs.npy."""
    from farm.models.convert import run_converter

    model = keras_model()
    rng = np.random.default_rng(5)
    representative = rng.normal(size=(32, 12, 12, 1)).astype(np.float32)
    files = {
        "int8-io": run_converter(converter(model, representative, io="int8")),
        "float-io": run_converter(converter(model, representative, io=None)),
        "uint8-io": run_converter(converter(model, representative, io="uint8")),
    }
    files["buffer-offset"] = with_buffers_after_the_flatbuffer(files["int8-io"])
    files["tf-2.3-schema"] = as_old_tensorflow_wrote_it(files["int8-io"])
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    np.save(folder / "inputs.npy", rng.normal(size=(6, 12, 12, 1)).astype(np.float32))
    return paths
