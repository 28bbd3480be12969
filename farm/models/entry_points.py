"""Recipes from the user's own package, found through entry points (as pytest finds plugins).

A package declares, in its ``pyproject.toml``::

    [project.entry-points."tinyfarm.recipes"]
    my_recipe = "mypkg.recipes"            # a module whose functions register with @recipe
    other = "mypkg.recipes:train_other"    # or a function returning farm.models.registry.TrainedModel

and a project file names it (``source: {recipe: my_recipe}``). Loading the entry point imports
the module, whose ``@farm.models.registry.recipe(...)`` functions register as zoo recipes do
(their source file is hashed into the cache key, the same way). A module that registers
several recipes must register one named after the entry point or the project's model. A
plain function is registered here under the project's model name, with the model's metric
and measurement plan and no parameters.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from types import MappingProxyType, ModuleType
from typing import Any

from farm.models import registry
from farm.models.project_model import ModelSourceError, ProjectModel
from farm.models.registry import Recipe

GROUP = "tinyfarm.recipes"

_FIELD = ("source", "recipe")


def find_entry_point(name: str) -> importlib.metadata.EntryPoint:
    """The entry point `name` of group ``tinyfarm.recipes`` (ModelSourceError naming what is installed)."""
    found = [ep for ep in importlib.metadata.entry_points(group=GROUP) if ep.name == name]
    if not found:
        installed = sorted({ep.name for ep in importlib.metadata.entry_points(group=GROUP)})
        raise ModelSourceError(
            f"no entry point {name!r} in group {GROUP!r} "
            f"(installed: {', '.join(installed) or 'none'}); your package declares it in pyproject.toml: "
            f"[project.entry-points.\"{GROUP}\"] {name} = \"yourpkg.recipes\", then pip install -e .", _FIELD)
    values = sorted({ep.value for ep in found})
    if len(values) > 1:
        raise ModelSourceError(f"entry point {name!r} of group {GROUP!r} is declared {len(values)} times, "
                               f"differently: {', '.join(values)}", _FIELD)
    return found[0]


def load_recipe(name: str, model: ProjectModel) -> Recipe:
    """The recipe entry point `name` stands for (module doc), for the project's `model`."""
    ep = find_entry_point(name)
    try:
        target = ep.load()
    except Exception as exc:  # noqa: BLE001  (the user's package: any failure, in one sentence)
        raise ModelSourceError(f"entry point {name!r} ({ep.value}) does not load: {type(exc).__name__}: {exc}",
                               _FIELD) from None
    if isinstance(target, ModuleType):
        return _registered_by_module(name, model, target)
    if not callable(target):
        raise ModelSourceError(f"entry point {name!r} ({ep.value}) is a {type(target).__name__}, "
                               "neither a module nor a function", _FIELD)
    for recipe_name in registry.registered_models():
        recipe = registry.get_recipe(recipe_name)
        if recipe.train is target and recipe.project is None:
            return recipe
    return _function_recipe(name, model, target)


def _registered_by_module(name: str, model: ProjectModel, module: ModuleType) -> Recipe:
    mine = []
    for recipe_name in registry.registered_models():
        recipe = registry.get_recipe(recipe_name)
        owner = getattr(recipe.train, "__module__", "") or ""
        if recipe.project is None and (owner == module.__name__ or owner.startswith(module.__name__ + ".")):
            mine.append(recipe)
    if not mine:
        raise ModelSourceError(f"entry point {name!r}: module {module.__name__} registers no recipe "
                               "(decorate a function with @farm.models.registry.recipe(...))", _FIELD)
    if len(mine) == 1:
        return mine[0]
    for wanted in (model.name, name):
        for recipe in mine:
            if recipe.name == wanted:
                return recipe
    raise ModelSourceError(f"entry point {name!r}: module {module.__name__} registers "
                           f"{', '.join(r.name for r in mine)}; name one of them {model.name!r} or {name!r}, "
                           "or point the entry point at one function", _FIELD)


def _function_recipe(name: str, model: ProjectModel, fn: Any) -> Recipe:
    source = inspect.getsourcefile(fn)
    if source is None:
        raise ModelSourceError(f"entry point {name!r}: cannot find the source file of {fn!r}", _FIELD)
    from pathlib import Path

    from farm.models.metrics import KNOWN, is_known

    if not is_known(model.metric):
        raise ModelSourceError(f"unknown metric {model.metric!r} (known: {KNOWN})", ("metric",))
    return Recipe(name=model.name, train=fn, params=MappingProxyType({}), metric=model.metric,
                  latency_only=False, description=(inspect.getdoc(fn) or f"recipe {name}").split("\n")[0],
                  source_file=Path(source), measure=MappingProxyType(dict(model.measure)))
