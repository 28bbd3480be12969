"""farm.models: recipes, the three variants, the host references and the cache."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farm.models import VARIANTS, UnknownModelError, build_variant, get_recipe, list_models
from farm.models.artifacts import CorruptEntryError, load_artifacts
from farm.models.cache import cache_key
from farm.models.metrics import MetricError, score
from farm.models.quantization import dequantize, quantize
from farm.tflite_reader import read_tflite
from fixtures_models import conv_tflite, model_cache_dir, sine_artifacts  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def test_registry():
    assert "sine" in list_models()
    recipe = get_recipe("sine")
    assert recipe.metric == "mae" and recipe.source_file.name == "sine.py"
    with pytest.raises(UnknownModelError, match=r"unknown model 'nope' \(known: .*sine"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="unknown variant 'fp16'"):
        build_variant("sine", "fp16", Path("/nonexistent"))


def test_sine_artifacts(sine_artifacts):
    assert set(sine_artifacts) == set(VARIANTS)
    for variant, art in sine_artifacts.items():
        assert (art.name, art.variant, art.metric) == ("sine", variant, "mae")
        assert art.test_inputs.shape == (64, 1) and art.ref_outputs.shape == (64, 1)
        assert art.ground_truth.shape == (64, 1) and art.ground_truth.dtype == np.float32
        assert art.size_bytes == art.tflite_path.stat().st_size
        assert 0 < art.host_metric < 0.1, f"{variant}: MAE {art.host_metric}"
        assert not art.latency_only
        io_dtype = np.int8 if variant == "int8" else np.float32
        assert art.test_inputs.dtype == io_dtype and art.ref_outputs.dtype == io_dtype
        assert score(art.metric, art.outputs_to_float(art.ref_outputs), art.ground_truth) == art.host_metric

    int8 = sine_artifacts["int8"]
    assert int8.input_scale > 0 and int8.output_scale > 0
    # the int8 test inputs are the float ones quantized with the model's input parameters
    floats = dequantize(int8.test_inputs, int8.input_scale, int8.input_zero_point)
    lo, hi = dequantize(np.array([-128, 127]), int8.input_scale, int8.input_zero_point)
    expected = np.clip(sine_artifacts["float32"].test_inputs, lo, hi)  # beyond the calibrated range: clamped
    np.testing.assert_allclose(floats, expected, rtol=0, atol=int8.input_scale / 2 + 1e-6)
    for variant in ("float32", "int8-weights"):
        art = sine_artifacts[variant]
        assert (art.input_scale, art.input_zero_point, art.output_scale, art.output_zero_point) == (0.0, 0, 0.0, 0)


def test_sine_quantized_models_are_smaller(sine_artifacts):
    sizes = {v: a.size_bytes for v, a in sine_artifacts.items()}
    assert sizes["int8"] < sizes["float32"] and sizes["int8-weights"] < sizes["float32"], sizes


def test_int8_weights_variant_really_has_int8_weights(sine_artifacts):
    graph = read_tflite(sine_artifacts["int8-weights"].tflite_path).main
    fcs = [op for op in graph.operators if op.opcode == "FULLY_CONNECTED"]
    assert len(fcs) == 3
    for fc in fcs:
        weights = graph.tensors[fc.inputs[1]]
        assert weights.dtype == "float32" and not weights.is_constant
        producer = graph.producer(weights.index)
        assert producer is not None and producer.opcode == "DEQUANTIZE"
        q = graph.tensors[producer.inputs[0]]
        assert q.dtype == "int8" and q.is_constant and q.shape == weights.shape
        assert q.quant.scales.size == 1 and q.quant.zero_point == 0  # per-tensor: TFLM's DEQUANTIZE
        assert np.max(np.abs(q.data.astype(int))) == 127  # symmetric, full range
        assert producer.index < fc.index
    # the float weights are gone from the file: only biases remain as float constants
    float_consts = [t for t in graph.tensors if t.is_constant and t.dtype == "float32"]
    assert all(len(t.shape) == 1 for t in float_consts)
    # and the int8 weights are within half a step of the float32 model's weights
    f32 = read_tflite(sine_artifacts["float32"].tflite_path).main
    for fc, fc32 in zip(fcs, [op for op in f32.operators if op.opcode == "FULLY_CONNECTED"]):
        q = graph.tensors[graph.producer(fc.inputs[1]).inputs[0]]
        w32 = f32.tensors[fc32.inputs[1]].data
        np.testing.assert_allclose(q.data * q.quant.scale, w32, rtol=0, atol=q.quant.scale / 2 + 1e-7)


def test_int8_weights_per_channel_runs_in_tensorflow(sine_artifacts):
    """The per-channel form is valid TFLite (TFLM's DEQUANTIZE would misread it: not our default)."""
    from farm.models.convert import weights_to_int8
    from farm.models.reference import run_tflite

    f32 = sine_artifacts["float32"]
    tflite = weights_to_int8(f32.tflite_path.read_bytes(), per_channel=True)
    out = run_tflite(tflite, f32.test_inputs)
    assert score("mae", out, f32.ground_truth) < 0.1
    np.testing.assert_allclose(out, f32.ref_outputs, atol=0.05)


def test_weights_to_int8_only_touches_fully_connected(conv_tflite):
    from farm.models.convert import weights_to_int8
    from farm.tflite_reader import parse_tflite

    graph = parse_tflite(weights_to_int8(conv_tflite.read_bytes())).main
    assert [op.opcode for op in graph.operators] == ["CONV_2D", "RESHAPE", "DEQUANTIZE", "FULLY_CONNECTED"]
    conv_weights = graph.tensors[graph.operators[0].inputs[1]]
    assert conv_weights.dtype == "float32" and conv_weights.is_constant


def test_cache_hit_needs_no_tensorflow(sine_artifacts, model_cache_dir):
    code = ("import sys; from pathlib import Path; from farm.models import build_variant; "
            f"a = build_variant('sine', 'int8', Path({str(model_cache_dir)!r})); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'; "
            "print(a.sha256)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sine_artifacts["int8"].sha256


def test_cache_key():
    recipe = get_recipe("sine")
    key = cache_key(recipe)
    assert key == cache_key(recipe) and len(key) == 64
    changed = dataclasses.replace(recipe, params={**recipe.params, "epochs": recipe.params["epochs"] + 1})
    assert cache_key(changed) != key


def test_corrupt_entry_detected(sine_artifacts, tmp_path):
    art = sine_artifacts["int8"]
    copy = tmp_path / "entry"
    shutil.copytree(art.tflite_path.parent, copy)
    assert load_artifacts(copy, "int8").sha256 == art.sha256
    (copy / "int8.tflite").write_bytes(art.tflite_path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CorruptEntryError, match="sha256"):
        load_artifacts(copy, "int8")
    assert load_artifacts(copy, "float16") is None


def test_metrics():
    truth = np.array([[0.0], [1.0], [-1.0]], dtype=np.float32)
    assert score("mae", np.array([[0.5], [1.0], [0.0]]), truth) == pytest.approx(0.5)
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert score("accuracy", scores, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert score("accuracy", scores, np.eye(2)[[1, 0, 1]]) == pytest.approx(1.0)
    with pytest.raises(MetricError, match="unknown metric 'f1'"):
        score("f1", scores, truth)
    with pytest.raises(MetricError, match="shape"):
        score("mae", np.zeros((3, 2)), truth)


def test_quantize_rounds_half_away_from_zero():
    x = np.array([0.5, -0.5, 1.5, -1.5, 2.5, 1000.0, -1000.0], dtype=np.float32)
    np.testing.assert_array_equal(quantize(x, 1.0, 0), [1, -1, 2, -2, 3, 127, -128])
    np.testing.assert_array_equal(quantize(x, 1.0, -10), [-9, -11, -8, -12, -7, 127, -128])
    np.testing.assert_allclose(dequantize(np.array([-128, 0, 127], dtype=np.int8), 0.5, -1), [-63.5, 0.5, 64.0])
