"""Build (or load from cache) a model variant: train -> convert -> host reference."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from farm.models import cache
from farm.models.artifacts import ModelArtifacts, cached_artifacts, save_artifacts
from farm.models.convert import convert
from farm.models.metrics import score
from farm.models.quantization import dequantize, quantize
from farm.models.reference import run_reference
from farm.models.registry import Recipe, get_recipe

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("float32", "int8-weights", "int8")


def build_variant(model: str, variant: str, cache_dir: Path) -> ModelArtifacts:
    """The artifacts of `model` in `variant`, built into `cache_dir` unless cached.

    A cache miss trains the recipe once and converts all variants, so asking for
    the other variants next is a hit. A hit does not import TensorFlow.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    recipe = get_recipe(model)
    key = cache.cache_key(recipe)
    directory = cache.entry_dir(Path(cache_dir), recipe.name, key)

    hit = cached_artifacts(directory, variant)
    if hit is not None:
        return hit
    with cache.entry_lock(directory):
        hit = cached_artifacts(directory, variant)  # another process may have built it meanwhile
        if hit is not None:
            return hit
        log.info("building model %s (cache key %s) into %s", recipe.name, key[:16], directory)
        built = build_all_variants(recipe, key, directory)
    return built[variant]


def build_all_variants(recipe: Recipe, key: str, directory: Path) -> dict[str, ModelArtifacts]:
    """Train `recipe` and write every variant's entry into `directory`."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise RuntimeError(f"building model {recipe.name!r} needs TensorFlow "
                           f"(it is not in the cache): {exc}") from exc

    trained = recipe.train(recipe.params)
    test_float = np.asarray(trained.test_inputs, dtype=np.float32)
    truth = np.asarray(trained.ground_truth, dtype=np.float32)
    built = {}
    for variant in VARIANTS:
        tflite = convert(trained.keras_model, variant, trained.representative,
                         per_channel=bool(recipe.params.get("int8_per_channel", True)))
        built[variant] = _reference_entry(recipe, variant, tflite, test_float, truth, key,
                                          tf.__version__, directory)
    return built


def _reference_entry(recipe: Recipe, variant: str, tflite: bytes, test_float: np.ndarray,
                     truth: np.ndarray, key: str, tf_version: str, directory: Path) -> ModelArtifacts:
    from farm.codegen.tflite_reader import parse_tflite

    graph = parse_tflite(tflite).main
    in_t = graph.tensors[graph.inputs[0]]
    out_t = graph.tensors[graph.outputs[0]]
    in_q = _io_quant(in_t.dtype, in_t.quant, variant, "input")
    out_q = _io_quant(out_t.dtype, out_t.quant, variant, "output")

    inputs = quantize(test_float, *in_q) if in_q[0] else test_float
    ref_outputs = run_reference(tflite, variant, inputs)
    ref_float = dequantize(ref_outputs, *out_q) if out_q[0] else ref_outputs.astype(np.float32)

    fields: dict[str, Any] = {
        "name": recipe.name,
        "variant": variant,
        "test_inputs": inputs,
        "ref_outputs": ref_outputs,
        "ground_truth": truth,
        "metric": recipe.metric,
        "host_metric": score(recipe.metric, ref_float, truth),
        "input_scale": in_q[0],
        "input_zero_point": in_q[1],
        "output_scale": out_q[0],
        "output_zero_point": out_q[1],
        "latency_only": bool(recipe.latency_only),
        "cache_key": key,
        "tf_version": tf_version,
        "measure_plan": dict(recipe.measure),
    }
    return save_artifacts(directory, fields, tflite)


def _io_quant(dtype: str, quant: Any, variant: str, which: str) -> tuple[float, int]:
    if dtype == "float32":
        return 0.0, 0
    if dtype == "int8" and quant is not None and not quant.per_channel:
        return float(quant.scale), int(quant.zero_point)
    raise RuntimeError(f"{variant} model {which} is {dtype}"
                       f"{' without per-tensor quantization' if dtype == 'int8' else ''}; "
                       "expected float32 or per-tensor int8")
