"""farm.models.sources: a project's models checked without TensorFlow (every bad input a
ModelSourceError naming its field), registered next to the zoo, their variants; entry points.

The .tflite files here are the sine model's (built once into the test state folder); the
conversions of Keras / SavedModel sources are tests/unit/test_project_conversion.py's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from farm.models import get_recipe, list_models, registered_models
from farm.models import registry
from farm.models.sources import (DataFiles, ModelSource, ModelSourceError, ProjectModel, check_project_model,
                                 model_variants, register_project_models)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def project(tmp_path, sine_artifacts):
    """A project folder: the sine files as ready .tflite, sine-shaped data (N x 1), a .keras-looking zip."""
    files = tmp_path / "models"
    files.mkdir()
    for variant in ("float32", "int8"):
        shutil.copy(sine_artifacts[variant].tflite_path, files / f"sine-{variant}.tflite")
    data = tmp_path / "data"
    data.mkdir()
    x = np.linspace(0, 6, 12, dtype=np.float32).reshape(12, 1)
    np.savez(data / "test.npz", x=x, y=np.sin(x))
    np.save(data / "x.npy", x)
    np.save(data / "y.npy", np.sin(x))
    np.save(data / "rep.npy", x[:4])
    with zipfile.ZipFile(files / "net.keras", "w") as archive:  # what Keras 3 writes: config.json + weights
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 1]}},
            {"class_name": "Dense", "config": {"units": 1}}]}}))
        archive.writestr("model.weights.h5", b"")
    yield tmp_path
    registry.clear_project()


def tflite_model(base: Path, **changes) -> ProjectModel:
    fields = dict(name="my-sine", source=ModelSource(tflite={"float32": Path("models/sine-float32.tflite"),
                                                             "int8": Path("models/sine-int8.tflite")}),
                  data=DataFiles(test=Path("data/test.npz")), metric="mae", variants=("float32", "int8"),
                  base_dir=base, origin=base / "tinyfarm.yaml")
    fields.update(changes)
    return ProjectModel(**fields)


def keras_model(base: Path, **changes) -> ProjectModel:
    return tflite_model(base, **{"source": ModelSource(keras=Path("models/net.keras")),
                                 "variants": ("float32", "int8-weights", "dynamic", "int8"), **changes})


def refused(model: ProjectModel) -> ModelSourceError:
    with pytest.raises(ModelSourceError) as info:
        check_project_model(model)
    return info.value


def test_good_models_pass_without_tensorflow(project):
    """The checks run (files, data, the .tflite input shapes) in a fresh process that never imports TF."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from farm.models.sources import DataFiles, ModelSource, ProjectModel, check_project_model
        base = Path({str(project)!r})
        tfl = ModelSource(tflite={{"float32": Path("models/sine-float32.tflite"), "int8": Path("models/sine-int8.tflite")}})
        for source in (tfl, ModelSource(keras=Path("models/net.keras"))):
            for data in (DataFiles(test=Path("data/test.npz")),
                         DataFiles(test=Path("data/x.npy"), labels=Path("data/y.npy"), representative=Path("data/rep.npy"))):
                variants = ("float32", "int8") if source.tflite else ("float32", "int8-weights", "dynamic", "int8")
                check_project_model(ProjectModel(name="m", source=source, data=data, metric="mae",
                                                 variants=variants, base_dir=base, origin=base / "tinyfarm.yaml"))
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TF imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_and_corrupt_sources(project):
    err = refused(keras_model(project, source=ModelSource(keras=Path("models/nope.keras"))))
    assert err.field == ("source", "keras") and "nope.keras: no such file" in str(err)

    (project / "models" / "bad.keras").write_bytes(b"not a zip at all")
    err = refused(keras_model(project, source=ModelSource(keras=Path("models/bad.keras"))))
    assert err.field == ("source", "keras") and "not a .keras file" in str(err)

    (project / "models" / "bad.h5").write_bytes(b"\0" * 64)
    err = refused(keras_model(project, source=ModelSource(keras=Path("models/bad.h5"))))
    assert "not an HDF5 (.h5) file" in str(err)

    (project / "models" / "empty_dir").mkdir()
    err = refused(keras_model(project, source=ModelSource(saved_model=Path("models/empty_dir"))))
    assert err.field == ("source", "saved_model") and "not a SavedModel directory (no saved_model.pb)" in str(err)
    err = refused(keras_model(project, source=ModelSource(saved_model=Path("models/net.keras"))))
    assert "a SavedModel is a directory (a .keras/.h5 file is a keras source)" in str(err)

    (project / "models" / "junk.tflite").write_bytes(b"\x01\x02" * 40)
    err = refused(tflite_model(project, source=ModelSource(tflite={"float32": Path("models/junk.tflite")}),
                               variants=("float32",)))
    assert err.field == ("source", "tflite", "float32") and "junk.tflite: not a TFLite model" in str(err)

    err = refused(tflite_model(project, source=ModelSource(keras=Path("models/net.keras"),
                                                          tflite={"int8": Path("x.tflite")})))
    assert err.field == ("source",) and "exactly one source" in str(err) and "keras and tflite" in str(err)


def test_a_tflite_file_is_the_variant_it_is_declared_as(project):
    swapped = ModelSource(tflite={"float32": Path("models/sine-int8.tflite"), "int8": Path("models/sine-float32.tflite")})
    err = refused(tflite_model(project, source=swapped))
    assert err.field == ("source", "tflite", "float32")
    assert "declared float32, but the file is a int8 model (int8 input); declare it as int8" in str(err)

    err = refused(tflite_model(project, variants=("float32", "dynamic", "int8")))
    assert err.field == ("variants",) and "dynamic declared but source.tflite has no file" in str(err)
    assert "declare variants: [float32, int8]" in str(err)

    err = refused(tflite_model(project, source=ModelSource(tflite={"fp16": Path("models/sine-float32.tflite")}),
                               variants=("float32",)))
    assert err.field == ("source", "tflite", "fp16") and "unknown variant 'fp16'" in str(err)

    err = refused(tflite_model(project, variants=("float32", "int4")))
    assert err.field == ("variants",) and "unknown variant(s) int4" in str(err)


@pytest.mark.parametrize("make, data, field, message", [
    (None, DataFiles(test=Path("data/none.npz")), ("data", "test"), "none.npz: no such file"),
    (lambda d: (d / "bad.npz").write_bytes(b"PK garbage"), DataFiles(test=Path("data/bad.npz")),
     ("data", "test"), "not a readable .npz file"),
    (lambda d: np.savez(d / "noxy.npz", inputs=np.zeros((3, 1))), DataFiles(test=Path("data/noxy.npz")),
     ("data", "test"), "no array x (it has: inputs); expected x and y"),
    (lambda d: np.save(d / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
     DataFiles(test=Path("data/obj.npy"), labels=Path("data/y.npy")), ("data", "test"), "holds Python objects"),
    (lambda d: np.save(d / "text.npy", np.array([["a"], ["b"]])),
     DataFiles(test=Path("data/text.npy"), labels=Path("data/y.npy")), ("data", "test"), "dtype <U1 is not numeric"),
    (lambda d: np.save(d / "y5.npy", np.zeros((5, 1))), DataFiles(test=Path("data/x.npy"), labels=Path("data/y5.npy")),
     ("data", "labels"), "5 labels for 12 test inputs"),
    (lambda d: np.savez(d / "empty.npz", x=np.zeros((0, 1)), y=np.zeros((0, 1))), DataFiles(test=Path("data/empty.npz")),
     ("data", "test"), "the test split is empty"),
    (lambda d: np.savez(d / "wide.npz", x=np.zeros((4, 3), np.float32), y=np.zeros((4, 1))),
     DataFiles(test=Path("data/wide.npz")), ("data", "test"), "samples are shaped (3,), but sine-float32.tflite"),
    (lambda d: np.save(d / "rep3.npy", np.zeros((4, 3))),
     DataFiles(test=Path("data/test.npz"), representative=Path("data/rep3.npy")), ("data", "representative"),
     "samples shaped (3,), but the test inputs are (1,)"),
    (lambda d: np.save(d / "nan.npy", np.full((2, 1), np.nan)), DataFiles(test=Path("data/nan.npy"), labels=Path("data/y.npy")),
     ("data", "test"), "NaN"),
    (None, DataFiles(test=Path("data/test.npz"), labels=Path("data/y.npy")), ("data", "labels"),
     "labels come from its y"),
])
def test_bad_data_names_its_field(project, make, data, field, message):
    if make is not None:
        make(project / "data")
    err = refused(tflite_model(project, data=data))
    assert err.field == field and message in str(err), (err.field, str(err))


def test_the_keras_files_input_shape_is_checked_without_keras(project):
    np.savez(project / "data" / "wide.npz", x=np.zeros((4, 3), np.float32), y=np.zeros((4, 1)))
    err = refused(keras_model(project, data=DataFiles(test=Path("data/wide.npz"))))
    assert err.field == ("data", "test")
    assert "samples are shaped (3,), but models/net.keras (input (None, 1)) takes (1,) per sample" in str(err)


def test_labels_fit_the_metric_and_the_output(project):
    np.savez(project / "data" / "frac.npz", x=np.zeros((3, 1), np.float32), y=np.array([0.5, 1.0, 0.0]))
    err = refused(tflite_model(project, data=DataFiles(test=Path("data/frac.npz")), metric="accuracy"))
    assert err.field == ("data", "test") and "not class indices (found 0.5)" in str(err)

    np.savez(project / "data" / "cls.npz", x=np.zeros((3, 1), np.float32), y=np.array([0, 3, 1]))
    err = refused(tflite_model(project, data=DataFiles(test=Path("data/cls.npz")), metric="accuracy"))
    assert err.field == ("data", "labels") and "class 3 but sine-float32.tflite has 1 outputs" in str(err)

    np.savez(project / "data" / "auc.npz", x=np.zeros((3, 1), np.float32), y=np.array([1, 1, 1]))
    err = refused(tflite_model(project, data=DataFiles(test=Path("data/auc.npz")), metric="roc-auc"))
    assert "roc-auc needs normal and anomalous samples" in str(err)

    err = refused(tflite_model(project, data=DataFiles(test=Path("data/x.npy")), metric="accuracy"))
    assert err.field == ("data", "test") and "accuracy needs them" in str(err)
    check_project_model(tflite_model(project, data=DataFiles(test=Path("data/x.npy")), metric="mse"))  # vs its inputs


def test_unknown_metric(project):
    err = refused(tflite_model(project, metric="f1"))
    assert err.field == ("metric",) and "unknown metric 'f1' (known: accuracy, top-<k>" in str(err)
    err = refused(tflite_model(project, metric="no_such_pkg.metrics:f1"))
    assert err.field == ("metric",) and "cannot import no_such_pkg.metrics" in str(err)


def test_a_loader(project):
    (project / "team_data.py").write_text(textwrap.dedent("""
        import numpy as np
        def load():
            x = np.linspace(0, 6, 8, dtype=np.float32).reshape(8, 1)
            return {"test": x, "labels": np.sin(x)}
        def load_wrong():
            return [1, 2, 3]
        def load_uneven():
            return {"test": np.zeros((8, 1)), "labels": np.zeros((7, 1))}
    """))
    try:
        check_project_model(tflite_model(project, data=DataFiles(loader="team_data:load")))
        for spec, message in (("team_data:load_wrong", "returned list; expected a dict"),
                              ("team_data:load_uneven", "7 labels for 8 test inputs"),
                              ("team_data:nope", "team_data has no function nope"),
                              ("team_data", "expected module:function")):
            err = refused(tflite_model(project, data=DataFiles(loader=spec)))
            assert err.field == ("data", "loader") and message in str(err), str(err)
    finally:
        sys.modules.pop("team_data", None)


def test_registered_project_models_come_first_and_the_zoo_stays_reachable(project, monkeypatch):
    monkeypatch.delenv("FARM_MODELS", raising=False)
    mine = tflite_model(project)
    alias = ProjectModel(name="sine-again", source=ModelSource(zoo="sine"), data=None, metric="mae",
                         variants=("int8",), base_dir=project)
    register_project_models([mine, alias], zoo=["sine"])
    assert list_models() == ["my-sine", "sine-again", "sine"]
    assert registered_models()[:2] == ["my-sine", "sine-again"] and {"digits", "vww"} <= set(registered_models())
    recipe = get_recipe("my-sine")
    assert recipe.project == mine and recipe.metric == "mae" and not recipe.latency_only
    assert model_variants("my-sine") == ("float32", "int8") and model_variants("sine") == (
        "float32", "int8-weights", "dynamic", "int8")
    assert model_variants("sine-again") == ("int8",) and get_recipe("sine-again").train is get_recipe("sine").train
    monkeypatch.setenv("FARM_MODELS", "sine-again,digits")
    assert list_models() == ["sine-again", "digits"]

    registry.clear_project()
    monkeypatch.delenv("FARM_MODELS")
    assert list_models() == sorted(list_models()) and "my-sine" not in list_models()


def test_registration_errors(project):
    with pytest.raises(ModelSourceError, match="also a zoo model the project includes"):
        register_project_models([tflite_model(project, name="sine")], zoo=["sine"])
    with pytest.raises(ModelSourceError, match="unknown zoo model"):
        register_project_models([], zoo=["sine", "resnet"])
    err = refused(ProjectModel(name="x", source=ModelSource(zoo="resnet"), data=None, metric="mae",
                               variants=("int8",), base_dir=project))
    assert err.field == ("source", "zoo") and "the zoo: ad, digits" in str(err)


def test_a_build_asks_only_for_declared_variants(project):
    from farm.models import build_variant

    register_project_models([tflite_model(project)], zoo=[])
    with pytest.raises(ValueError, match=r"model 'my-sine' does not declare variant 'dynamic' \(it declares: float32, int8\)"):
        build_variant("my-sine", "dynamic", project / "cache")


# --------------------------------------------------------------------------- entry points


@pytest.fixture()
def installed_package(tmp_path, monkeypatch):
    """A package that looks installed: its module and a dist-info with entry_points.txt on sys.path."""
    site = tmp_path / "site"
    (site / "teamrecipes").mkdir(parents=True)
    (site / "teamrecipes" / "__init__.py").write_text("")
    (site / "teamrecipes" / "zoo.py").write_text(textwrap.dedent("""
        from farm.models.registry import recipe

        @recipe("team-tiny", metric="top-2", params={"seed": 7}, description="a team's tiny classifier")
        def team_tiny(params):
            raise NotImplementedError("not trained in this test")
    """))
    (site / "teamrecipes" / "plain.py").write_text(textwrap.dedent("""
        def train(params):
            '''A plain function returning TrainedModel.'''
            raise NotImplementedError("not trained in this test")
    """))
    dist = site / "teamrecipes-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: teamrecipes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tinyfarm.recipes]\nteam = teamrecipes.zoo\n"
                                           "plain = teamrecipes.plain:train\nbroken = teamrecipes.missing\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_RECIPES", dict(registry._RECIPES))  # noqa: SLF001  (undone after the test)
    yield site
    for name in [m for m in sys.modules if m.startswith("teamrecipes")]:
        sys.modules.pop(name)
    registry.clear_project()


def test_entry_point_recipes(installed_package, tmp_path, monkeypatch):
    from farm.models.entry_points import find_entry_point

    monkeypatch.delenv("FARM_MODELS", raising=False)
    module = ProjectModel(name="team-model", source=ModelSource(recipe="team"), data=None, metric="accuracy",
                          variants=("float32", "int8"), measure={"windows": 2}, base_dir=tmp_path)
    plain = ProjectModel(name="plain-model", source=ModelSource(recipe="plain"), data=None, metric="mae",
                         variants=("int8",), base_dir=tmp_path)
    check_project_model(module)
    register_project_models([module, plain], zoo=[])
    recipe = get_recipe("team-model")
    assert recipe.metric == "top-2" and recipe.params == {"seed": 7}  # the recipe's own
    assert recipe.source_file.name == "zoo.py" and recipe.measure == {"windows": 2}
    assert model_variants("team-model") == ("float32", "int8") and recipe.project is None
    other = get_recipe("plain-model")
    assert other.metric == "mae" and other.source_file.name == "plain.py" and other.description.startswith("A plain")
    assert list_models() == ["team-model", "plain-model"]

    with pytest.raises(ModelSourceError, match=r"no entry point 'nope' in group 'tinyfarm.recipes' \(installed: "
                                               r".*broken, plain, team"):
        find_entry_point("nope")
    err = refused(ProjectModel(name="b", source=ModelSource(recipe="nope"), data=None, metric="mae",
                               variants=("int8",), base_dir=tmp_path))
    assert err.field == ("source", "recipe")
    with pytest.raises(ModelSourceError, match="entry point 'broken' .* does not load: ModuleNotFoundError"):
        register_project_models([ProjectModel(name="b", source=ModelSource(recipe="broken"), data=None,
                                              metric="mae", variants=("int8",), base_dir=tmp_path)], zoo=[])
