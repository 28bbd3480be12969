"""A project's own models as farm models: check them, register them, their variants and sizes.

farm.project reads the project file into `ProjectModel`s (farm.models.project_model) and calls

    check_project_model(model)              cheap, no TensorFlow: files there and readable, data
                                            shapes / dtypes / sample counts agree, metric known
    register_project_models(models, zoo)    afterwards get_recipe / build_variant / list_models /
                                            registered_models know the project's models

A model's source decides how its variants are made:

- ``keras`` / ``saved_model``: converted the way the seed does (farm.models.project_build), and
  ``tflite``: the given files, one per declared variant; cached by content hash like the zoo;
- ``recipe``: an entry point of the user's package (farm.models.entry_points), ``zoo``: a zoo
  recipe; both through the zoo's recipe path (farm.models.build).

`size_table` is the seed's table: the source's size (SavedModel directory, .keras file), then
each variant's .tflite and its ratio to the source.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from farm.config.variants import VARIANTS
from farm.models import data_files, entry_points, project_files, registry
from farm.models.metrics import KNOWN, MetricError, resolve
from farm.models.project_model import DataFiles, ModelSource, ModelSourceError, ProjectModel, SizeRow
from farm.models.registry import Recipe, get_recipe

__all__ = ["DataFiles", "ModelSource", "ModelSourceError", "ProjectModel", "SizeRow", "check_project_model",
           "clear_project_models", "model_variants", "register_project_models", "size_table"]

#: sources built from the project's files by farm.models.project_build (the others are recipes)
FILE_SOURCES: tuple[str, ...] = ("keras", "saved_model", "tflite")


def check_project_model(model: ProjectModel) -> None:
    """Refuse, with a ModelSourceError naming the field, what cannot be built: a source
    file or folder that is missing or unreadable, a .tflite that is not one or whose variant
    is not the one declared, data that is missing, corrupt, of the wrong dtype, shape or sample
    count, an unknown variant or metric. Imports no TensorFlow (a .tflite is read by the farm's
    own reader; a Keras/SavedModel input shape is checked when the model is built)."""
    bad = [v for v in model.variants if v not in VARIANTS]
    if bad or not model.variants:
        raise ModelSourceError(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}"
                               if bad else f"no variants declared; choose from {', '.join(VARIANTS)}", ("variants",))
    kind = model.source.kind
    _add_to_path(model.base_dir)
    if kind in FILE_SOURCES:
        _check_metric(model.metric)
    if kind == "zoo":
        zoo = model.source.zoo or ""
        if zoo not in registry.registered_models() or registry.get_recipe(zoo).project is not None:
            raise ModelSourceError(f"unknown zoo model {zoo!r} (the zoo: {', '.join(_zoo_names())})", ("source", "zoo"))
        return
    if kind == "recipe":
        entry_points.find_entry_point(model.source.recipe or "")
        return
    project_files.check_source(model)
    data = data_files.load_data(model)
    if data is not None:
        data_files.check_metric_data(model, data)
        project_files.check_data_against_source(model, data)


def register_project_models(models: Sequence[ProjectModel], zoo: Sequence[str]) -> None:
    """Make the project's `models` and the zoo models it includes (`zoo`) the farm's models:
    ``list_models()`` is then the project's models followed by `zoo` (still honouring
    ``$FARM_MODELS``); every zoo model stays available by name. The project's folder goes on
    ``sys.path``, so its loaders, metrics and recipes import. An entry-point recipe is loaded
    here (ModelSourceError when it does not load)."""
    recipes = []
    for model in models:
        _add_to_path(model.base_dir)
        recipes.append(_recipe_of(model))
    clash = [m.name for m in models if m.name in zoo and m.source.kind != "zoo"]
    if clash:
        raise ModelSourceError(f"model {clash[0]!r} is also a zoo model the project includes (zoo:); "
                               "rename one of them", ())
    try:
        registry.set_project(recipes, zoo)
    except registry.UnknownModelError as exc:
        raise ModelSourceError(str(exc), ()) from None


def clear_project_models() -> None:
    """Forget the registered project: the zoo is the farm's models again (as before any project)."""
    registry.clear_project()


def model_variants(model: str) -> tuple[str, ...]:
    """The variants `model` declares, in the seed's order (a zoo model: all four)."""
    declared = set(get_recipe(model).variants)
    return tuple(v for v in VARIANTS if v in declared)


def size_table(model: str, cache_dir: Path) -> list[SizeRow]:
    """The seed's size table of `model`: its source (a SavedModel directory, a .keras/.h5
    file: their size on disk; other sources start with the float32 .tflite), then each
    declared variant's .tflite with its size against the source. Builds what is not cached."""
    from farm.models.variants import build_variant

    recipe = get_recipe(model)
    rows: list[SizeRow] = []
    source_bytes: int | None = None
    if recipe.project is not None and recipe.project.source.kind in ("keras", "saved_model"):
        label, source_bytes = project_files.source_size(recipe.project)
        rows.append(SizeRow(label, source_bytes, None))
    for variant in model_variants(model):
        art = build_variant(model, variant, cache_dir)
        if source_bytes is None:
            source_bytes = art.size_bytes  # no source file: the ratio is against the first variant
        rows.append(SizeRow(f"{variant} .tflite", art.size_bytes,
                            art.size_bytes / source_bytes if source_bytes else None))
    return rows


# --------------------------------------------------------------------------- helpers


def _zoo_names() -> list[str]:
    return [name for name in registry.registered_models() if registry.get_recipe(name).project is None
            and name not in registry.project_models()]


def _check_metric(metric: str) -> None:
    try:
        resolve(metric)
    except MetricError as exc:
        raise ModelSourceError(str(exc) if "unknown metric" not in str(exc)
                               else f"unknown metric {metric!r} (known: {KNOWN})", ("metric",)) from None


def _add_to_path(base_dir: Path) -> None:
    folder = str(Path(base_dir).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _recipe_of(model: ProjectModel) -> Recipe:
    kind = model.source.kind
    measure = dict(model.measure)
    if kind == "zoo":
        zoo = get_recipe(model.source.zoo or "")
        if zoo.project is not None:
            raise ModelSourceError(f"unknown zoo model {model.source.zoo!r}", ("source", "zoo"))
        return dataclasses.replace(zoo, name=model.name, measure={**zoo.measure, **measure},
                                   variants=tuple(model.variants))
    if kind == "recipe":
        found = entry_points.load_recipe(model.source.recipe or "", model)
        return dataclasses.replace(found, name=model.name, measure={**found.measure, **measure},
                                   variants=tuple(model.variants))
    return Recipe(name=model.name, train=_not_trained(model), params={}, metric=model.metric,
                  latency_only=model.data is None, description=project_files.describe(model),
                  source_file=project_files.source_file(model), measure=measure,
                  variants=tuple(model.variants), project=model)


def _not_trained(model: ProjectModel):  # noqa: ANN202  (a TrainFn)
    def train(params: object) -> object:
        raise ModelSourceError(f"model {model.name!r} comes from its {model.source.kind} source and is "
                               "converted, not trained (farm.models.build_variant builds it)", ("source",))

    return train
