"""Model recipes, registered by decorator and looked up by name.

A recipe is a function that trains a Keras model from bundled or generated data
and returns a `TrainedModel`. Adding a model is a new module with one decorated
function (imported from `farm.models.__init__`), never an edit to a dispatcher:

    @recipe("sine", metric="mae", params={"seed": 1234, ...})
    def sine(params: Mapping[str, Any]) -> TrainedModel: ...

Recipe modules must not import TensorFlow at import time (only inside the
function), so listing models and loading cached ones stays TensorFlow-free.

A recipe may carry a measurement plan (``measure={"warmup": 1, "windows": 3,
"inferences_per_window": 1, "inference_timeout": 600}``): overrides of
`farm.measure.timing.MeasurePlan` for models too slow on an emulator for the default
run rules. It travels with the built artifacts (`ModelArtifacts.measure_plan`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from farm.config.variants import VARIANTS
from farm.models.metrics import KNOWN, is_known
from farm.models.project_model import ProjectModel


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """What a recipe returns: the model and the data the pipeline needs."""

    keras_model: Any  # keras.Model with a fixed batch of 1
    representative: np.ndarray  # float inputs for int8 calibration (N x input shape)
    test_inputs: np.ndarray  # float test split (N x input shape, no batch)
    ground_truth: np.ndarray  # float (N x ...), what `metric` scores against


TrainFn = Callable[[Mapping[str, Any]], TrainedModel]


#: the `farm.measure.timing.MeasurePlan` fields a recipe may override
MEASURE_KEYS = ("warmup", "windows", "inferences_per_window", "request_timeout", "inference_timeout")


@dataclass(frozen=True)
class Recipe:
    name: str
    train: TrainFn
    params: Mapping[str, Any]
    metric: str
    latency_only: bool
    description: str
    source_file: Path  # hashed into the cache key
    measure: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # MeasurePlan overrides
    #: the variants the model declares (a zoo model: all of them); not part of the cache key
    variants: tuple[str, ...] = VARIANTS
    #: a project's model built from its files (keras, SavedModel, .tflite): its entry, built by
    #: farm.models.project_build instead of `train` (None: a recipe, the zoo's or an entry point's)
    project: ProjectModel | None = None


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


_RECIPES: dict[str, Recipe] = {}


def recipe(name: str, *, metric: str, params: Mapping[str, Any], latency_only: bool = False,
           description: str = "", measure: Mapping[str, Any] | None = None) -> Callable[[TrainFn], TrainFn]:
    """Register the decorated function as the recipe `name`."""
    if not is_known(metric):
        raise ValueError(f"recipe {name!r}: unknown metric {metric!r} (known: {KNOWN})")
    unknown = sorted(set(measure or {}) - set(MEASURE_KEYS))
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown measurement plan keys {unknown} (known: {', '.join(MEASURE_KEYS)})")

    def register(fn: TrainFn) -> TrainFn:
        if name in _RECIPES and _RECIPES[name].train is not fn:
            raise ValueError(f"recipe {name!r} is registered twice "
                             f"({_RECIPES[name].source_file} and {inspect.getsourcefile(fn)})")
        source = inspect.getsourcefile(fn)
        if source is None:
            raise ValueError(f"recipe {name!r}: cannot find the source file of {fn!r}")
        _RECIPES[name] = Recipe(
            name=name,
            train=fn,
            params=MappingProxyType(dict(params)),
            metric=metric,
            latency_only=latency_only,
            description=description or (inspect.getdoc(fn) or "").split("\n")[0],
            source_file=Path(source),
            measure=MappingProxyType(dict(measure or {})),
        )
        return fn

    return register


#: the active project's models, in its order (farm.models.sources.register_project_models), and the
#: zoo models it includes; None: no project, the zoo is every registered recipe
_PROJECT: dict[str, Recipe] = {}
_INCLUDED_ZOO: list[str] | None = None


def set_project(models: Sequence[Recipe], zoo: Sequence[str]) -> None:
    """Make `models` (a project's, each under its own name) and the zoo models `zoo` the default
    models (replacing a project set before)."""
    global _INCLUDED_ZOO
    unknown = [name for name in zoo if name not in _RECIPES]
    if unknown:
        raise UnknownModelError(f"unknown zoo model(s) {', '.join(unknown)} (the zoo: {', '.join(sorted(_RECIPES))})")
    _PROJECT.clear()
    _PROJECT.update({r.name: r for r in models})
    _INCLUDED_ZOO = [name for name in dict.fromkeys(zoo) if name not in _PROJECT]


def clear_project() -> None:
    """Back to no project: the zoo is the default models again."""
    global _INCLUDED_ZOO
    _PROJECT.clear()
    _INCLUDED_ZOO = None


def project_models() -> list[str]:
    """The active project's own models, in its order (none without a project)."""
    return list(_PROJECT)


def get_recipe(name: str) -> Recipe:
    """The recipe of model `name`: a project's model first, then a registered recipe."""
    if name in _PROJECT:
        return _PROJECT[name]
    try:
        return _RECIPES[name]
    except KeyError:
        known = ", ".join(registered_models()) or "none registered"
        raise UnknownModelError(f"unknown model {name!r} (known: {known})") from None


def registered_models() -> list[str]:
    """Every model a name may be: the active project's models (in its order), then every
    registered recipe (sorted)."""
    return list(_PROJECT) + sorted(name for name in _RECIPES if name not in _PROJECT)


def list_models() -> list[str]:
    """The models the farm's commands and the HIL suite work through by default: with a
    project, its models then the zoo models it includes; without one, every registered
    recipe; or the comma-separated selection in ``$FARM_MODELS`` (e.g.
    ``FARM_MODELS=sine,digits``, to keep a quick run quick). A model named explicitly
    (``--model``, ``get_recipe``) is available either way."""
    selection = [name.strip() for name in os.environ.get("FARM_MODELS", "").split(",") if name.strip()]
    if not selection:
        return registered_models() if _INCLUDED_ZOO is None else list(_PROJECT) + list(_INCLUDED_ZOO)
    unknown = [name for name in selection if name not in _RECIPES and name not in _PROJECT]
    if unknown:
        raise UnknownModelError(f"FARM_MODELS names unknown model(s) {', '.join(unknown)} "
                                f"(known: {', '.join(registered_models())})")
    return list(dict.fromkeys(selection))
