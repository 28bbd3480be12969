"""Which builder makes each variant: `build_variant`, the one entry for any of them.

The variants themselves (the one list, farm.config.variants.VARIANTS, exported as
``farm.models.VARIANTS``): float32, int8-weights, dynamic, int8. Two builders make their
cache entries: farm.models.build trains a recipe once and converts the variants it has
always made (its own tuple; the entry it writes is keyed as before), and
farm.models.dynamic_range makes the dynamic variant into an entry of its own key
(farm.models.cache: the key of a variant built elsewhere also hashes that builder's
module), so adding the dynamic variant left every existing cache entry valid.

A project's model built from its files (keras, SavedModel, .tflite) is made by
farm.models.project_build, into the same layout; a project's recipe (an entry point, a zoo
model under another name) goes the zoo's way. A model is asked only for the variants it declares.
"""

from __future__ import annotations

from pathlib import Path

from farm.config.variants import VARIANTS
from farm.models import build, dynamic_range, project_build
from farm.models.artifacts import ModelArtifacts
from farm.models.registry import get_recipe

__all__ = ["VARIANTS", "build_variant"]


def build_variant(model: str, variant: str, cache_dir: Path) -> ModelArtifacts:
    """The artifacts of `model` in `variant`, built into `cache_dir` unless cached
    (a cache hit does not import TensorFlow)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    recipe = get_recipe(model)
    if variant not in recipe.variants:
        raise ValueError(f"model {model!r} does not declare variant {variant!r} "
                         f"(it declares: {', '.join(recipe.variants)})")
    if recipe.project is not None:
        return project_build.build_project_variant(recipe.project, variant, cache_dir)
    if variant == dynamic_range.VARIANT:
        return dynamic_range.build_dynamic(model, cache_dir)
    return build.build_variant(model, variant, cache_dir)
