"""The dynamic-range variant (the seed's "Model 2") and a user's own .tflite as model artifacts.

The conversion (hybrid FULLY_CONNECTED with float input and int8 weights), its host reference
(tf.lite.Interpreter with BUILTIN_REF: TFLM refuses hybrid models), the one variant list, the
cache keys (adding the variant changed no existing entry's key), and farm.models.user_tflite
(the variant read from the file, seeded inputs, the reference of its kind).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm.models import VARIANTS, get_recipe
from fixtures_models import model_cache_dir, sine_artifacts  # noqa: F401


def _dense_model(inputs: int = 32, hidden: int = 64, outputs: int = 8, seed: int = 7):
    """A small Keras MLP: its first weight tensor (inputs x hidden >= 1024 elements) becomes a hybrid
    FULLY_CONNECTED under dynamic range; the second (hidden x outputs < 1024) stays float."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(shape=(inputs,), batch_size=1),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(outputs),
    ])


@pytest.fixture(scope="module")
def hybrid_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from farm.models.dynamic_range import to_dynamic

    path = tmp_path_factory.mktemp("hybrid") / "mlp_dynamic.tflite"
    path.write_bytes(to_dynamic(_dense_model()))
    return path


# --------------------------------------------------------------------------- the one list


def test_one_variant_list_in_the_seeds_order():
    from farm.config import variants as vocabulary
    from farm.models import build

    assert VARIANTS == ("float32", "int8-weights", "dynamic", "int8")
    assert VARIANTS is vocabulary.VARIANTS
    # farm.models.build keeps making the variants it always made; dynamic_range makes the new one
    assert set(build.VARIANTS) | {"dynamic"} == set(VARIANTS) and "dynamic" not in build.VARIANTS
    assert vocabulary.FLOAT_OUTPUT_VARIANTS == ("float32", "int8-weights", "dynamic")
    assert [vocabulary.variant_order(v) for v in VARIANTS] == [0, 1, 2, 3] and vocabulary.variant_order("x") == 4
    assert "float32, int8-weights, dynamic or int8" in vocabulary.variants_help()


def test_every_float_variant_has_its_tolerance():
    from farm.config.variants import FLOAT_OUTPUT_VARIANTS
    from farm.measure.job import DYNAMIC_TOLERANCE, FLOAT_TOLERANCE, OUTPUT_TOLERANCE

    assert set(OUTPUT_TOLERANCE) == set(FLOAT_OUTPUT_VARIANTS)
    assert OUTPUT_TOLERANCE["dynamic"] == DYNAMIC_TOLERANCE and OUTPUT_TOLERANCE["float32"] == FLOAT_TOLERANCE
    # a few ulps of outputs below 256 fit; one int8 step of a quantized input (>= ~1e-3 here) does not
    assert 3 * np.spacing(np.float32(255.0)) <= DYNAMIC_TOLERANCE < 1e-3


def test_unknown_variant_is_refused_by_the_one_entry():
    from farm.models import build_variant

    with pytest.raises(ValueError, match=r"unknown variant 'fp16' \(known: float32, int8-weights, dynamic, int8\)"):
        build_variant("sine", "fp16", Path("/nonexistent"))


# --------------------------------------------------------------------------- the cache key


def test_existing_variants_keep_their_cache_key_the_dynamic_variant_has_its_own(monkeypatch):
    from farm.models import build, cache

    recipe = get_recipe("sine")
    key = cache.cache_key(recipe)
    assert all(cache.cache_key(recipe, v) == key for v in build.VARIANTS)
    dynamic = cache.cache_key(recipe, "dynamic")
    assert dynamic != key and len(dynamic) == 64
    # editing the dynamic variant's builder rebuilds that variant only
    real = cache._file_sha256  # noqa: SLF001  (the module's own helper, patched to simulate an edit)
    monkeypatch.setattr(cache, "_file_sha256",
                        lambda path: "edited" if path.name == "dynamic_range.py" else real(path))
    assert cache.cache_key(recipe) == key and cache.cache_key(recipe, "dynamic") != dynamic


def test_the_states_existing_entries_are_still_hits(model_cache_dir):
    """The entries built before the dynamic variant existed load as they are (no retraining)."""
    from farm.models import build, cache
    from farm.models.artifacts import load_artifacts

    recipe = get_recipe("sine")
    directory = cache.entry_dir(model_cache_dir, "sine", cache.cache_key(recipe))
    if not (directory / "float32.json").is_file():
        pytest.skip(f"no sine entry in {model_cache_dir} yet")
    for variant in build.VARIANTS:
        art = load_artifacts(directory, variant)
        assert art is not None and art.cache_key == cache.cache_key(recipe, variant)


# --------------------------------------------------------------------------- conversion and reference


def test_dynamic_conversion_makes_hybrid_ops(hybrid_tflite):
    from farm.codegen.tflite_reader import read_tflite
    from farm.models.dynamic_range import hybrid_ops

    graph = read_tflite(hybrid_tflite).main
    assert graph.tensors[graph.inputs[0]].dtype == "float32" and graph.tensors[graph.outputs[0]].dtype == "float32"
    fcs = [op for op in graph.operators if op.opcode == "FULLY_CONNECTED"]
    assert len(fcs) == 2
    assert hybrid_ops(graph) == [(fcs[0].index, "FULLY_CONNECTED")]  # 32 x 64 weights: int8
    w = graph.tensors[fcs[0].inputs[1]]
    assert w.dtype == "int8" and w.is_constant and graph.tensors[fcs[0].inputs[0]].dtype == "float32"
    assert graph.tensors[fcs[1].inputs[1]].dtype == "float32"  # 64 x 8 = 512 elements: left float by TensorFlow


def test_builtin_ref_is_the_reference_tflm_refuses_hybrid(hybrid_tflite):
    from farm.models.dynamic_range import run_builtin_ref
    from farm.models.reference import run_tflm

    data = hybrid_tflite.read_bytes()
    x = np.random.default_rng(0).uniform(-1, 1, size=(4, 32)).astype(np.float32)
    out = run_builtin_ref(data, x)
    assert out.shape == (4, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out, run_builtin_ref(data, x))  # deterministic
    expected = _dense_model()(x).numpy()  # the same seed: the same float weights
    assert np.max(np.abs(out - expected)) < 0.05 * max(1.0, float(np.max(np.abs(expected))))  # int8 weights, close
    with pytest.raises(RuntimeError, match="TFLM failed to allocate tensors"):  # "FLOAT32 with filter INT8"
        run_tflm(data, x)


def test_sine_dynamic_variant(sine_artifacts):
    """sine's weight tensors are all under 1024 elements: TensorFlow's dynamic range leaves them
    float, so its dynamic file is float32 through and through (the same size, the same outputs)."""
    from farm.codegen.tflite_reader import read_tflite
    from farm.models.dynamic_range import hybrid_ops, run_builtin_ref

    art, f32 = sine_artifacts["dynamic"], sine_artifacts["float32"]
    assert (art.name, art.variant, art.metric) == ("sine", "dynamic", "mae")
    assert art.test_inputs.dtype == np.float32 and art.ref_outputs.dtype == np.float32
    assert (art.input_scale, art.output_scale) == (0.0, 0.0) and not art.quantized_io
    np.testing.assert_array_equal(art.test_inputs, f32.test_inputs)
    np.testing.assert_array_equal(art.ref_outputs, run_builtin_ref(art.tflite_path.read_bytes(), art.test_inputs))
    np.testing.assert_allclose(art.ref_outputs, f32.ref_outputs, rtol=0, atol=1e-5)
    graph, graph32 = read_tflite(art.tflite_path).main, read_tflite(f32.tflite_path).main
    assert hybrid_ops(graph) == [] and art.cache_key != f32.cache_key
    # the recipe's seeds give the dynamic entry (trained on its own) the float32 entry's weights;
    # the files differ only in tensor names (Keras numbers its layers per process)
    consts = [[t.data for t in g.tensors if t.is_constant] for g in (graph, graph32)]
    assert len(consts[0]) == len(consts[1]) > 0
    for a, b in zip(*consts):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- a user's .tflite


def test_user_file_variants_are_read_from_the_file(sine_artifacts, hybrid_tflite):
    from farm.models.user_tflite import classify_file

    kinds = {v: classify_file(sine_artifacts[v].tflite_path) for v in ("float32", "int8-weights", "int8")}
    assert {v: (k.variant, k.reference) for v, k in kinds.items()} == {
        "float32": ("float32", "tensorflow"), "int8-weights": ("int8-weights", "tensorflow"),
        "int8": ("int8", "tflite-micro")}
    hybrid = classify_file(hybrid_tflite)
    assert (hybrid.variant, hybrid.reference) == ("dynamic", "tflite-builtin-ref")
    assert "hybrid FULLY_CONNECTED (operator #0)" in hybrid.reason


def test_user_artifacts_hybrid(hybrid_tflite, tmp_path):
    from farm.models.dynamic_range import run_builtin_ref
    from farm.models.user_tflite import SAMPLES, user_artifacts

    art = user_artifacts(hybrid_tflite, tmp_path)
    assert (art.name, art.variant, art.metric, art.latency_only) == ("mlp_dynamic.tflite", "dynamic", "mae", True)
    assert art.test_inputs.shape == (SAMPLES, 32) and art.test_inputs.dtype == np.float32
    assert np.all(np.abs(art.test_inputs) <= 1.0)
    np.testing.assert_array_equal(art.ref_outputs, run_builtin_ref(hybrid_tflite.read_bytes(), art.test_inputs))
    assert art.host_metric == 0.0 and art.sha256 and art.size_bytes == hybrid_tflite.stat().st_size
    again = user_artifacts(hybrid_tflite, tmp_path)  # a cache hit: the same seeded inputs
    np.testing.assert_array_equal(again.test_inputs, art.test_inputs)
    assert again.tflite_path == art.tflite_path


def test_user_artifacts_int8_are_tflite_micro_outputs(sine_artifacts, tmp_path):
    from farm.models.reference import run_tflm
    from farm.models.user_tflite import user_artifacts

    src = sine_artifacts["int8"]
    path = tmp_path / "hello.tflite"
    path.write_bytes(src.tflite_path.read_bytes())
    art = user_artifacts(path, tmp_path / "cache")
    assert art.variant == "int8" and art.test_inputs.dtype == np.int8 and art.ref_outputs.dtype == np.int8
    assert (art.input_scale, art.input_zero_point) == (src.input_scale, src.input_zero_point)
    np.testing.assert_array_equal(art.ref_outputs, run_tflm(path.read_bytes(), art.test_inputs))
    np.testing.assert_allclose(art.ground_truth, art.outputs_to_float(art.ref_outputs))


def test_user_file_errors_name_the_file(tmp_path):
    from farm.models.user_tflite import UserModelError, user_artifacts

    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(UserModelError, match=r"broken\.tflite: not a TFLite model"):
        user_artifacts(bad, tmp_path)
    with pytest.raises(UserModelError, match=r"missing\.tflite: cannot read"):
        user_artifacts(tmp_path / "missing.tflite", tmp_path)


def test_cli_accepts_an_existing_tflite_path_where_asked(tmp_path):
    from farm.cli.common import FarmUsageError, check_models_and_variants

    path = tmp_path / "m.tflite"
    path.write_bytes(b"x")
    check_models_and_variants([str(path), "sine"], ["dynamic"], files=True)
    with pytest.raises(FarmUsageError, match=r"nope\.tflite: no such file"):
        check_models_and_variants([str(tmp_path / "nope.tflite")], [], files=True)
    with pytest.raises(FarmUsageError, match="unknown model"):
        check_models_and_variants([str(path)], [])  # commands that take zoo names only


def test_size_against_float32_in_words():
    from farm.store.figures import size_vs_float32

    assert size_vs_float32(3092, 2592) == "1.19x smaller"
    assert size_vs_float32(3092, 3120) == "1.01x larger"  # a dynamic file whose weights all stayed float
    assert size_vs_float32(3092, 3092) == "same size" and size_vs_float32(None, 10) == ""
