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
from farm.codegen.tflite_reader import read_tflite
from fixtures_models import conv_tflite, model_cache_dir, sine_artifacts  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


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


def test_weights_to_int8_quantizes_every_weight_op(conv_tflite):
    """CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED weights all become int8 + DEQUANTIZE
    (per-tensor: TFLM's DEQUANTIZE has no per-channel path); nothing else changes."""
    from farm.models.convert import weights_to_int8
    from farm.codegen.tflite_reader import parse_tflite

    f32 = parse_tflite(conv_tflite.read_bytes()).main
    graph = parse_tflite(weights_to_int8(conv_tflite.read_bytes())).main
    assert [op.opcode for op in graph.operators] == ["DEQUANTIZE", "CONV_2D", "RESHAPE", "DEQUANTIZE",
                                                     "FULLY_CONNECTED"]
    for op, op32 in zip([o for o in graph.operators if o.opcode != "DEQUANTIZE"], f32.operators):
        if op.opcode == "RESHAPE":
            continue
        weights = graph.tensors[op.inputs[1]]
        assert weights.dtype == "float32" and not weights.is_constant
        q = graph.tensors[graph.producer(weights.index).inputs[0]]
        assert q.dtype == "int8" and q.quant.scales.size == 1 and q.quant.zero_point == 0
        w32 = f32.tensors[op32.inputs[1]].data
        np.testing.assert_allclose(q.data * q.quant.scale, w32, rtol=0, atol=q.quant.scale / 2 + 1e-7)
    float_consts = [t for t in graph.tensors if t.is_constant and t.dtype == "float32"]
    assert all(len(t.shape) == 1 for t in float_consts)  # only biases stay float


def test_quantize_symmetric_per_channel_axis():
    from farm.models.convert import quantize_symmetric

    w = np.random.default_rng(0).normal(size=(1, 3, 3, 5)).astype(np.float32)
    w[..., 2] *= 10.0
    q, scales = quantize_symmetric(w, per_channel=True, axis=3)
    assert scales.shape == (5,) and q.shape == w.shape
    np.testing.assert_allclose(q * scales.reshape(1, 1, 1, 5), w, rtol=0, atol=float(scales.max()) / 2 + 1e-7)
    assert np.all(np.max(np.abs(q.reshape(-1, 5)), axis=0) == 127)


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


# --------------------------------------------------------------------------- #
# The zoo
# --------------------------------------------------------------------------- #

ZOO_INPUTS = {"digits": (8, 8, 1), "kws": (49, 10, 1), "ad": (640,), "ic": (32, 32, 3), "vww": (96, 96, 3)}


def test_zoo_registry():
    from farm.measure.timing import MeasurePlan
    from farm.models import registered_models

    assert set(registered_models()) >= {"sine", *ZOO_INPUTS}
    assert not get_recipe("digits").latency_only  # real data (scikit-learn), real accuracy
    for name in ("kws", "ad", "ic", "vww"):
        recipe = get_recipe(name)
        assert recipe.latency_only, f"{name} trains on generated data: it must say so"
        assert recipe.measure, f"{name} is slow on the emulators: it needs its own measurement plan"
        plan = MeasurePlan(**recipe.measure)  # every key is a MeasurePlan field
        # exact counts need > 4 SysTick ticks per window at 1.6 ticks per instruction
        assert plan.inferences_per_window * 1.6 > 4 and plan.windows >= 2 and plan.warmup >= 1
    with pytest.raises(ValueError, match="unknown measurement plan keys"):
        from farm.models.registry import recipe as register

        register("bad-plan", metric="mae", params={}, measure={"windowz": 3})


def test_list_models_follows_farm_models(monkeypatch):
    from farm.models import registered_models

    monkeypatch.setenv("FARM_MODELS", "digits, sine")
    assert list_models() == ["digits", "sine"]
    monkeypatch.setenv("FARM_MODELS", "")
    assert list_models() == registered_models()
    monkeypatch.setenv("FARM_MODELS", "sine,nope")
    with pytest.raises(UnknownModelError, match="FARM_MODELS names unknown model"):
        list_models()


@pytest.fixture(scope="session")
def zoo_artifacts(model_cache_dir):
    """Every variant of every zoo model (built once, then cached in the state folder)."""
    from farm.models.native_output import native_output_to

    with native_output_to(model_cache_dir.parent / "logs" / "tensorflow.log"):
        return {(m, v): build_variant(m, v, model_cache_dir) for m in ZOO_INPUTS for v in VARIANTS}


def test_zoo_models_at_their_real_input_sizes(zoo_artifacts):
    for (name, variant), art in zoo_artifacts.items():
        assert art.test_inputs.shape[1:] == ZOO_INPUTS[name], (name, variant)
        assert art.latency_only == (name != "digits")
        assert art.measure_plan == dict(get_recipe(name).measure)
        assert len(art.test_inputs) == len(art.ref_outputs) == len(art.ground_truth) > 0
        graph = read_tflite(art.tflite_path).main
        assert tuple(graph.tensors[graph.inputs[0]].shape) == (1, *ZOO_INPUTS[name])
    sizes = {(n, v): a.size_bytes for (n, v), a in zoo_artifacts.items()}
    for name in ZOO_INPUTS:
        assert sizes[name, "int8"] < sizes[name, "float32"] and sizes[name, "int8-weights"] < sizes[name, "float32"]


def test_digits_real_accuracy_on_the_host(zoo_artifacts):
    accuracies = {v: zoo_artifacts["digits", v].host_metric for v in VARIANTS}
    assert min(accuracies.values()) >= 0.93, accuracies
    assert len(zoo_artifacts["digits", "int8"].test_inputs) == 360  # 20% of scikit-learn's 1797 digits


def test_mlperf_tiny_architectures(zoo_artifacts):
    """The reference architectures' op mix survives conversion (BN folded, Dropout gone)."""
    ops = {name: [op.opcode for op in read_tflite(zoo_artifacts[name, "int8"].tflite_path).main.operators]
           for name in ("kws", "ad", "ic", "vww")}
    assert ops["kws"].count("DEPTHWISE_CONV_2D") == 4 and ops["kws"].count("CONV_2D") == 5
    assert "AVERAGE_POOL_2D" in ops["kws"] and ops["kws"][-1] == "SOFTMAX"
    assert ops["ad"].count("FULLY_CONNECTED") == 10
    assert ops["ic"].count("ADD") == 3 and ops["ic"].count("CONV_2D") == 9
    assert ops["vww"].count("DEPTHWISE_CONV_2D") == 13 and ops["vww"].count("CONV_2D") == 14
