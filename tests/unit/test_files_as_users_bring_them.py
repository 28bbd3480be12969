"""Real .tflite files as teams bring them, not only as the farm's own converter call makes
them: int8 files with float or uint8 input/output (QUANTIZE/DEQUANTIZE at the edges), a
RESHAPE/SOFTMAX tail, weights of hundreds of KB, constant buffers placed after the
flatbuffer (the converter's buffer-offset layout, used by files over 2 GB), and the schema
as older TensorFlow versions (2.3 and earlier) wrote it: the operator code only in the int8
`deprecated_builtin_code`, no signatures, no metadata, no shape signatures, schema version 3.

Each file runs on the host build of the generated code with outputs identical to the
tflite-micro interpreter's, or is refused before any build by operator name and index.
The files are made in tests/user_files.py; their board runs are in
tests/e2e/test_user_files_on_boards.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures_models import compile_host_model, run_host_model
from user_files import WEIGHTS_DENSE, keras_model


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from user_files import user_files as write_user_files

    return write_user_files(tmp_path_factory.mktemp("user-files"))


def _inputs_for(path: Path, floats: np.ndarray) -> np.ndarray:
    """The float test inputs in the file's input type (quantized with its own parameters)."""
    from farm.codegen.tflite_reader import read_tflite

    model = read_tflite(path)
    tensor = model.main.tensors[model.main.inputs[0]]
    if tensor.dtype == "float32":
        return floats
    scale, zero = tensor.quant.scale, tensor.quant.zero_point
    info = np.iinfo(np.dtype(tensor.dtype))
    return np.clip(np.round(floats / scale) + zero, info.min, info.max).astype(tensor.dtype)


def _output_dtype(path: Path) -> np.dtype:
    from farm.codegen.tflite_reader import read_tflite

    model = read_tflite(path)
    return np.dtype(model.main.tensors[model.main.outputs[0]].dtype)


def test_the_files_are_what_users_bring(user_files):
    """The conversions really produced the layouts this module is about."""
    from farm.codegen.tflite_reader import read_tflite
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    ops = {name: [op.opcode for op in read_tflite(path).main.operators] for name, path in user_files.items()}
    core = ["CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]
    assert ops["int8-io"] == core
    assert ops["float-io"] == ["QUANTIZE", *core, "DEQUANTIZE"]
    assert ops["uint8-io"] == ["QUANTIZE", *core, "QUANTIZE"]
    assert ops["buffer-offset"] == ops["tf-2.3-schema"] == core

    dense = [t for t in read_tflite(user_files["int8-io"]).main.tensors if t.shape == WEIGHTS_DENSE[::-1]]
    assert len(dense) == 1 and dense[0].data.nbytes == 204_800

    raw = user_files["buffer-offset"].read_bytes()
    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    outside = [b for b in model.buffers if b.offset > 1]
    assert outside and all(b.data is None for b in outside)
    assert sum(b.size for b in outside) >= 204_800

    old = schema.ModelT.InitFromPackedBuf(user_files["tf-2.3-schema"].read_bytes(), 0)
    assert old.version == 3 and not old.signatureDefs and not old.metadata
    assert all(code.builtinCode == 0 for code in old.operatorCodes)


@pytest.mark.parametrize("name", ["int8-io", "float-io", "buffer-offset", "tf-2.3-schema"])
def test_each_file_runs_identical_to_tflite_micro(user_files, name, tmp_path):
    """The generated code, built for the host, against the tflite-micro interpreter on the
    same file (and, for the rewritten layouts, on the converter's own int8 file)."""
    from farm.models.reference import run_tflite, run_tflm

    path = user_files[name]
    floats = np.load(path.parent / "inputs.npy")
    inputs = _inputs_for(path, floats)
    expected = run_tflm(path.read_bytes(), inputs)
    if name in ("buffer-offset", "tf-2.3-schema"):
        original = user_files["int8-io"].read_bytes()
        np.testing.assert_array_equal(expected, run_tflm(original, inputs))
    if name == "buffer-offset":  # TensorFlow Lite reads the file as it is: the same as the original
        np.testing.assert_array_equal(run_tflite(path.read_bytes(), inputs), run_tflite(original, inputs))
    exe = compile_host_model(path, tmp_path, name=name.replace("-", "_").replace(".", "_"), variant="int8")
    out = run_host_model(exe, inputs, _output_dtype(path), expected.shape[1:])
    np.testing.assert_array_equal(out, expected)


def test_tflite_micro_gets_the_buffers_inside_the_flatbuffer(user_files):
    """The tflite-micro interpreter (Python wheel) does not read buffers placed after the
    flatbuffer and runs on zeros without a word: the farm's reference hands it the file with
    those buffers moved inside, byte for byte the same constants."""
    from farm.codegen.tflite_reader import read_tflite
    from farm.models.reference import with_buffers_inside

    raw = user_files["buffer-offset"].read_bytes()
    inside = with_buffers_inside(raw)
    assert with_buffers_inside(user_files["int8-io"].read_bytes()) == user_files["int8-io"].read_bytes()
    copy = user_files["buffer-offset"].parent / "inside.tflite"
    copy.write_bytes(inside)
    before, after = read_tflite(user_files["buffer-offset"]).main, read_tflite(copy).main
    for a, b in zip(before.tensors, after.tensors, strict=True):
        assert (a.data is None) == (b.data is None)
        if a.data is not None:
            np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="ends past the file"):
        with_buffers_inside(raw[:-100])


def test_a_uint8_io_file_is_refused_by_operator_name_and_index(user_files, tmp_path):
    """uint8 input/output (QUANTIZE uint8 -> int8 at the front, int8 -> uint8 at the end):
    refused before any build, naming the file, the operator and its index."""
    from farm.codegen import generate
    from farm.codegen.errors import UnsupportedOperatorError

    with pytest.raises(UnsupportedOperatorError) as info:
        generate(user_files["uint8-io"], tmp_path / "gen", name="u8", variant="int8")
    assert str(info.value).startswith("uint8-io.tflite: operator #0 QUANTIZE: uint8 -> int8 is not supported")
    assert not list(tmp_path.glob("gen/*.c"))


def test_a_float16_file_is_refused_by_operator_name_and_index(tmp_path):
    """A float16-weights file (the converter's float16 quantization) runs DEQUANTIZE on float16
    constants, which the code generator has no kernel for: refused before any build, naming
    the operator, its index and the model."""
    import tensorflow as tf

    from farm.codegen import generate
    from farm.codegen.errors import UnsupportedOperatorError
    from farm.models.convert import run_converter

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    path = tmp_path / "fp16.tflite"
    path.write_bytes(run_converter(converter))
    with pytest.raises(UnsupportedOperatorError) as info:
        generate(path, tmp_path / "gen", name="fp16", variant="float16")
    message = str(info.value)
    assert message.startswith("fp16.tflite: operator #0 DEQUANTIZE: input tensor #")
    assert "is float16" in message and "supported_types=[tf.float16]" in message
    assert not list(tmp_path.glob("gen/*.c"))
