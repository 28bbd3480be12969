"""A project's own models made into the four variants with real TensorFlow (no board):
a .keras file, a SavedModel directory (``from_saved_model``), ready .tflite files per variant,
an entry-point recipe of an installed-looking package, a zoo model; the host reference and
metric over the whole test split; the seed's size table; conversion failures named by step.

The Keras models are trained here in a second or two (scikit-learn's breast-cancer data).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from farm.models import VARIANTS, build_variant, registry
from farm.models.sources import (DataFiles, ModelSource, ModelSourceError, ProjectModel, register_project_models,
                                 size_table)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder: a small classifier as .keras and as a SavedModel (free batch), its data."""
    import keras
    from sklearn.datasets import load_breast_cancer

    base = tmp_path_factory.mktemp("project")
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(40, activation="relu"),  # 1200 weights: hybrid
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x[:400], y[:400], epochs=8, batch_size=32, verbose=0)
    (base / "models").mkdir()
    model.save(base / "models" / "clf.keras")
    model.export(str(base / "models" / "clf_saved"), verbose=False)
    (base / "data").mkdir()
    np.savez(base / "data" / "test.npz", x=x[400:480], y=y[400:480])
    np.save(base / "data" / "rep.npy", x[:100])
    predictions = model.predict(x[400:480], verbose=0)
    return {"base": base, "predictions": predictions, "labels": y[400:480], "cache": base / "cache"}


@pytest.fixture()
def registered():
    yield register_project_models
    registry.clear_project()


def declared(project, name, source, **changes):
    fields = dict(name=name, source=source, data=DataFiles(test=Path("data/test.npz"),
                                                          representative=Path("data/rep.npy")),
                  metric="accuracy", variants=VARIANTS, base_dir=project["base"],
                  origin=project["base"] / "tinyfarm.yaml")
    fields.update(changes)
    return ProjectModel(**fields)


def graph_of(art):
    from farm.codegen.tflite_reader import read_tflite

    return read_tflite(art.tflite_path).main


def check_variants(arts, project):
    """What every converted classifier's four entries must be (the zoo's contract)."""
    from farm.models.dynamic_range import hybrid_ops, run_builtin_ref
    from farm.models.metrics import score
    from farm.models.reference import run_tflite, run_tflm

    n = len(project["labels"])
    expected_accuracy = float(np.mean(project["predictions"].argmax(axis=1) == project["labels"]))
    for variant, art in arts.items():
        assert (art.variant, art.metric, art.latency_only) == (variant, "accuracy", False)
        assert art.test_inputs.shape == (n, 30) and art.ref_outputs.shape == (n, 2)  # the whole split
        assert art.size_bytes == art.tflite_path.stat().st_size
        assert {op.opcode for op in graph_of(art).operators} <= {"FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"}
        assert score("accuracy", art.outputs_to_float(art.ref_outputs), art.ground_truth) == art.host_metric
        assert abs(art.host_metric - expected_accuracy) <= 2 / n, (variant, art.host_metric, expected_accuracy)
    floats = arts["float32"]
    np.testing.assert_allclose(floats.ref_outputs, project["predictions"], atol=1e-5)
    np.testing.assert_array_equal(floats.ref_outputs, run_tflite(floats.tflite_path.read_bytes(), floats.test_inputs))
    int8 = arts["int8"]
    assert int8.test_inputs.dtype == np.int8 and int8.ref_outputs.dtype == np.int8 and int8.input_scale > 0
    np.testing.assert_array_equal(int8.ref_outputs, run_tflm(int8.tflite_path.read_bytes(), int8.test_inputs))
    dynamic = arts["dynamic"]
    assert [op for _, op in hybrid_ops(graph_of(dynamic))] == ["FULLY_CONNECTED"]  # the 30 x 40 layer
    np.testing.assert_array_equal(dynamic.ref_outputs, run_builtin_ref(dynamic.tflite_path.read_bytes(),
                                                                       dynamic.test_inputs))
    weights = graph_of(arts["int8-weights"])
    assert [op.opcode for op in weights.operators].count("DEQUANTIZE") == 2
    sizes = {v: a.size_bytes for v, a in arts.items()}
    assert sizes["int8"] < sizes["float32"] and sizes["int8-weights"] < sizes["float32"], sizes


def test_a_keras_file_becomes_the_four_variants(project, registered):
    registered([declared(project, "clf-keras", ModelSource(keras=Path("models/clf.keras")))], zoo=[])
    arts = {v: build_variant("clf-keras", v, project["cache"]) for v in VARIANTS}
    check_variants(arts, project)
    assert len({a.tflite_path.parent for a in arts.values()}) == 1  # one entry, the zoo's layout
    assert arts["float32"].tflite_path.parent.name.startswith("clf-keras-")

    rows = size_table("clf-keras", project["cache"])
    keras_bytes = (project["base"] / "models" / "clf.keras").stat().st_size
    assert [(r.label, r.bytes) for r in rows][0] == ("keras models/clf.keras", keras_bytes)
    assert [r.label for r in rows[1:]] == [f"{v} .tflite" for v in VARIANTS]
    assert rows[0].ratio_to_source is None
    assert all(r.ratio_to_source == pytest.approx(r.bytes / keras_bytes) for r in rows[1:])


def test_a_saved_model_becomes_the_four_variants(project, registered):
    """A SavedModel exported with a free batch is converted with from_saved_model at a batch of
    one (no SHAPE / STRIDED_SLICE / PACK); the reference data is the data files' test split."""
    registered([declared(project, "clf-saved", ModelSource(saved_model=Path("models/clf_saved")))], zoo=[])
    arts = {v: build_variant("clf-saved", v, project["cache"]) for v in VARIANTS}
    check_variants(arts, project)
    assert tuple(graph_of(arts["float32"]).tensors[graph_of(arts["float32"]).inputs[0]].shape) == (1, 30)

    rows = size_table("clf-saved", project["cache"])
    directory = project["base"] / "models" / "clf_saved"
    on_disk = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    assert (rows[0].label, rows[0].bytes) == ("SavedModel models/clf_saved (directory)", on_disk)
    assert rows[1].bytes == arts["float32"].size_bytes and rows[1].ratio_to_source == pytest.approx(
        arts["float32"].size_bytes / on_disk)


def test_a_cache_hit_imports_no_tensorflow(project, registered):
    registered([declared(project, "clf-keras", ModelSource(keras=Path("models/clf.keras")))], zoo=[])
    built = build_variant("clf-keras", "int8", project["cache"])
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from farm.models import build_variant, VARIANTS
        from farm.models.sources import DataFiles, ModelSource, ProjectModel, register_project_models
        base = Path({str(project["base"])!r})
        register_project_models([ProjectModel(name="clf-keras", source=ModelSource(keras=Path("models/clf.keras")),
            data=DataFiles(test=Path("data/test.npz"), representative=Path("data/rep.npy")), metric="accuracy",
            variants=VARIANTS, base_dir=base, origin=base / "tinyfarm.yaml")], zoo=[])
        art = build_variant("clf-keras", "int8", base / "cache")
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TF imported"
        print(art.sha256)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == built.sha256


def test_ready_tflite_files_per_variant(project, registered):
    """The given files, one per declared variant; test inputs from the data, quantized with the
    int8 file's own input quantization; the same references as the converted ones."""
    registered([declared(project, "clf-keras", ModelSource(keras=Path("models/clf.keras")))], zoo=[])
    converted = {v: build_variant("clf-keras", v, project["cache"]) for v in ("float32", "dynamic", "int8")}
    files = {v: a.tflite_path for v, a in converted.items()}
    registered([declared(project, "clf-files", ModelSource(tflite=files), variants=("float32", "dynamic", "int8"))],
               zoo=[])
    for variant, ref in converted.items():
        art = build_variant("clf-files", variant, project["cache"])
        assert art.sha256 == ref.sha256 and art.name == "clf-files"
        assert art.tflite_path.parent.name.startswith("clf-files-")
        np.testing.assert_array_equal(art.test_inputs, ref.test_inputs)
        np.testing.assert_array_equal(art.ref_outputs, ref.ref_outputs)
        assert (art.input_scale, art.input_zero_point) == (ref.input_scale, ref.input_zero_point)
        assert art.host_metric == ref.host_metric
    rows = size_table("clf-files", project["cache"])
    assert [r.label for r in rows] == ["float32 .tflite", "dynamic .tflite", "int8 .tflite"]
    assert rows[0].ratio_to_source == 1.0


def test_a_model_without_data_is_latency_only(project, registered):
    registered([declared(project, "clf-nodata", ModelSource(keras=Path("models/clf.keras")), data=None,
                         variants=("float32", "int8"))], zoo=[])
    art = build_variant("clf-nodata", "int8", project["cache"])
    assert art.latency_only and art.metric == "mae" and art.host_metric == 0.0 and art.test_inputs.shape == (8, 30)


def test_wrong_data_shape_for_a_saved_model_is_found_when_it_is_converted(project, registered, tmp_path):
    np.savez(project["base"] / "data" / "narrow.npz", x=np.zeros((5, 29), np.float32), y=np.zeros(5, np.int64))
    registered([declared(project, "clf-narrow", ModelSource(saved_model=Path("models/clf_saved")),
                         data=DataFiles(test=Path("data/narrow.npz")))], zoo=[])
    with pytest.raises(ModelSourceError) as info:
        build_variant("clf-narrow", "float32", tmp_path)
    assert info.value.field == ("data", "test")
    assert "narrow.npz: samples are shaped (29,), but models/clf_saved (input (1, 30)) takes (30,)" in str(info.value)


def test_a_conversion_failure_names_the_step_and_why(project, registered, tmp_path):
    import tensorflow as tf

    class Inverse(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def serve(self, x):
            return tf.reshape(tf.linalg.inv(tf.reshape(x, [2, 2])), [1, 4])

    module = Inverse()
    tf.saved_model.save(module, str(tmp_path / "inverse"), signatures={"serving_default": module.serve})
    np.savez(tmp_path / "inv.npz", x=np.eye(2, dtype=np.float32).reshape(1, 4).repeat(3, axis=0), y=np.zeros((3, 4)))
    registered([ProjectModel(name="inverse", source=ModelSource(saved_model=Path("inverse")),
                             data=DataFiles(test=Path("inv.npz")), metric="mae", variants=VARIANTS,
                             base_dir=tmp_path)], zoo=[])
    with pytest.raises(ModelSourceError) as info:
        build_variant("inverse", "float32", tmp_path / "cache")
    assert info.value.field == ("source", "saved_model")
    message = str(info.value)
    assert message.startswith("model 'inverse': float32 conversion (TFLiteConverter, no optimizations) failed: "
                              "ConverterError: 'tf.MatrixInverse' op is neither a custom op nor a flex op"), message
    assert "TF Select ops: MatrixInverse" in message and "loc(" not in message

    import zipfile
    with zipfile.ZipFile(tmp_path / "hollow.keras", "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Nope"}]}}')
    registered([ProjectModel(name="hollow", source=ModelSource(keras=Path("hollow.keras")), data=None, metric="mae",
                             variants=VARIANTS, base_dir=tmp_path)], zoo=[])
    with pytest.raises(ModelSourceError, match=r"model 'hollow': loading the Keras model hollow.keras failed: "):
        build_variant("hollow", "float32", tmp_path / "cache")


def test_an_autoencoders_roc_auc_is_scored_on_its_reconstruction_error(tmp_path, registered):
    import keras

    rng = np.random.default_rng(9)
    basis = rng.normal(size=(3, 12)).astype(np.float32)
    normal = (rng.normal(size=(600, 3)) @ basis).astype(np.float32)  # normal samples: a 3-dim subspace
    keras.utils.set_random_seed(9)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3), keras.layers.Dense(12)])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    model.fit(normal[:500], normal[:500], epochs=15, batch_size=50, verbose=0)
    model.save(tmp_path / "ae.keras")
    anomalous = rng.normal(size=(20, 12)).astype(np.float32) * 2.0
    x = np.concatenate([normal[500:560], anomalous])
    y = np.array([0] * 60 + [1] * 20)
    np.savez(tmp_path / "ad.npz", x=x, y=y)
    registered([ProjectModel(name="ae", source=ModelSource(keras=Path("ae.keras")), data=DataFiles(test=Path("ad.npz")),
                             metric="roc-auc", variants=("float32", "int8"), base_dir=tmp_path)], zoo=[])
    for variant in ("float32", "int8"):
        art = build_variant("ae", variant, tmp_path / "cache")
        assert art.metric == "roc-auc" and art.ground_truth.shape == (80, 13)  # the label, then the inputs
        np.testing.assert_array_equal(art.ground_truth[:, 0], y)
        assert art.host_metric > 0.95, (variant, art.host_metric)


@pytest.fixture()
def team_package(tmp_path, monkeypatch):
    """An installed-looking package with a real recipe, found through its entry point."""
    site = tmp_path / "site"
    (site / "teamzoo").mkdir(parents=True)
    (site / "teamzoo" / "__init__.py").write_text("")
    (site / "teamzoo" / "recipes.py").write_text(textwrap.dedent("""
        import numpy as np
        from farm.models.registry import TrainedModel, recipe

        @recipe("cubic", metric="mse", params={"seed": 3})
        def cubic(params):
            '''y = x^3 on [-1, 1], a 1-8-1 MLP.'''
            import keras
            keras.utils.set_random_seed(params["seed"])
            x = np.linspace(-1, 1, 256, dtype=np.float32).reshape(-1, 1)
            model = keras.Sequential([keras.Input((1,), batch_size=1), keras.layers.Dense(8, activation="tanh"),
                                      keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
            model.fit(x, x ** 3, epochs=3, batch_size=1, verbose=0)
            return TrainedModel(keras_model=model, representative=x[::8], test_inputs=x[::16], ground_truth=x[::16] ** 3)
    """))
    dist = site / "teamzoo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: teamzoo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tinyfarm.recipes]\ncubic = teamzoo.recipes\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_RECIPES", dict(registry._RECIPES))  # noqa: SLF001  (undone after the test)
    yield site
    for name in [m for m in sys.modules if m.startswith("teamzoo")]:
        sys.modules.pop(name)


def test_an_entry_point_recipe_is_built_the_zoos_way(team_package, tmp_path, registered):
    from farm.models.cache import cache_key, entry_dir

    registered([ProjectModel(name="team-cubic", source=ModelSource(recipe="cubic"), data=None, metric="accuracy",
                             variants=("float32", "int8"), base_dir=tmp_path)], zoo=[])
    recipe = registry.get_recipe("team-cubic")
    arts = {v: build_variant("team-cubic", v, tmp_path / "cache") for v in ("float32", "int8")}
    for variant, art in arts.items():
        assert (art.name, art.metric) == ("team-cubic", "mse") and art.test_inputs.shape == (16, 1)
        assert art.host_metric < 0.05, (variant, art.host_metric)
        assert art.tflite_path.parent == entry_dir(tmp_path / "cache", "team-cubic", cache_key(recipe))
    assert recipe.source_file == team_package / "teamzoo" / "recipes.py"  # hashed into the key, as the zoo's


def test_a_zoo_source_is_the_zoo_model(sine_artifacts, model_cache_dir, registered, tmp_path):
    registered([ProjectModel(name="sine", source=ModelSource(zoo="sine"), data=None, metric="mae",
                             variants=("float32", "int8"), base_dir=tmp_path)], zoo=[])
    for variant in ("float32", "int8"):
        assert build_variant("sine", variant, model_cache_dir).sha256 == sine_artifacts[variant].sha256  # a hit
    with pytest.raises(ValueError, match="does not declare variant 'dynamic'"):
        build_variant("sine", "dynamic", model_cache_dir)
