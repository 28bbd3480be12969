"""farm.codegen.tflite_reader against TensorFlow's own reading of the same files."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from farm.codegen.tflite_reader import TfliteFormatError, parse_tflite, read_tflite
from fixtures_models import conv_tflite, model_cache_dir, sine_artifacts  # noqa: F401

VARIANTS = ["float32", "int8-weights", "int8"]


def _tf_interpreter(path: Path):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )
    interpreter.allocate_tensors()
    return interpreter


@pytest.mark.parametrize("variant", VARIANTS)
def test_tensors_match_tensorflow(sine_artifacts, variant):
    path = sine_artifacts[variant].tflite_path
    model = read_tflite(path)
    graph = model.main
    interpreter = _tf_interpreter(path)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    assert len(graph.tensors) == len(details)
    for t in graph.tensors:
        d = details[t.index]
        assert t.name == d["name"]
        assert t.shape == tuple(d["shape"])
        assert np.dtype(t.dtype) == np.dtype(d["dtype"])
        q = d["quantization_parameters"]
        if t.quant is None:
            assert q["scales"].size == 0
        else:
            np.testing.assert_array_equal(t.quant.scales, q["scales"])
            np.testing.assert_array_equal(t.quant.zero_points, q["zero_points"])
            assert t.quant.quantized_dimension == q["quantized_dimension"]
        if t.is_constant:
            np.testing.assert_array_equal(t.data, interpreter.get_tensor(t.index))
    assert graph.inputs == (interpreter.get_input_details()[0]["index"],)
    assert graph.outputs == (interpreter.get_output_details()[0]["index"],)
    assert model.size_bytes == path.stat().st_size
    assert model.sha256 == sine_artifacts[variant].sha256


@pytest.mark.parametrize("variant", VARIANTS)
def test_operators_match_tensorflow(sine_artifacts, variant):
    path = sine_artifacts[variant].tflite_path
    graph = read_tflite(path).main
    ops = _tf_interpreter(path)._get_ops_details()  # noqa: SLF001 (no public equivalent)
    assert [op.opcode for op in graph.operators] == [d["op_name"] for d in ops]
    for op, d in zip(graph.operators, ops):
        assert list(op.inputs) == list(d["inputs"])
        assert list(op.outputs) == list(d["outputs"])
    fcs = [op for op in graph.operators if op.opcode == "FULLY_CONNECTED"]
    assert [op.options["fused_activation"] for op in fcs] == ["RELU", "RELU", "NONE"]
    assert all(op.options["keep_num_dims"] is False for op in fcs)
    assert all(op.options["weights_format"] == "DEFAULT" for op in fcs)


def test_conv_model_options(conv_tflite):
    graph = read_tflite(conv_tflite).main
    conv = graph.operators[0]
    assert conv.opcode == "CONV_2D"
    assert conv.options["fused_activation"] == "RELU"
    assert conv.options["padding"] == "VALID"
    assert conv.options["options_type"] == "Conv2DOptions"
    assert (conv.options["stride_w"], conv.options["stride_h"]) == (1, 1)
    weights = graph.tensors[conv.inputs[1]]
    assert weights.shape == (4, 3, 3, 1) and weights.data.dtype == np.float32


def _with_opcode(src: bytes, deprecated: int, builtin: int) -> bytes:
    from farm.models.convert import pack_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    fb = schema.ModelT.InitFromPackedBuf(bytearray(src), 0)
    fb.operatorCodes[0].deprecatedBuiltinCode = deprecated
    fb.operatorCodes[0].builtinCode = builtin
    return pack_model(fb)


def test_opcode_is_the_larger_of_the_two_code_fields(sine_artifacts):
    src = sine_artifacts["float32"].tflite_path.read_bytes()
    # schema >= 3a: ops past 127 keep 127 (PLACEHOLDER_FOR_GREATER_OP_CODES) in the old field
    assert parse_tflite(_with_opcode(src, 127, 150)).main.operators[0].opcode == "GELU"
    # files from before 3a have only the deprecated int8 field
    assert parse_tflite(_with_opcode(src, 9, 0)).main.operators[0].opcode == "FULLY_CONNECTED"


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "notes.tflite"
    bad.write_bytes(b"this is not a flatbuffer at all")
    with pytest.raises(TfliteFormatError, match=r"^notes\.tflite: not a \.tflite flatbuffer"):
        read_tflite(bad)
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(b"\x18\x00\x00\x00TFL3\x00\x00")
    with pytest.raises(TfliteFormatError, match=r"^cut\.tflite: "):
        read_tflite(truncated)


def test_reader_does_not_import_tensorflow(sine_artifacts):
    code = ("import sys; from pathlib import Path; from farm.codegen.tflite_reader import read_tflite; "
            f"m = read_tflite(Path({str(sine_artifacts['int8'].tflite_path)!r})); "
            "assert len(m.main.operators) == 3; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
