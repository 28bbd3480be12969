"""The dynamic-range variant (the seed's "Model 2"): conversion, host reference, cache entry.

``TFLiteConverter.from_keras_model`` with ``optimizations=[tf.lite.Optimize.DEFAULT]`` and no
representative dataset: TensorFlow's dynamic-range quantization. Every FULLY_CONNECTED,
CONV_2D and DEPTHWISE_CONV_2D whose weight tensor has 1024 elements or more becomes a
*hybrid* op: float input and output, int8 weights (per channel by default), the input
quantized per batch at run time, int8 x int8 products accumulated in int32, then a float
rescale and a float bias. Smaller weight tensors stay float (TensorFlow's threshold; it has
no public switch), so a model as small as sine converts to an all-float file.

TFLM refuses hybrid models ("Hybrid models are not supported on TFLite Micro"); the host
reference is ``tf.lite.Interpreter`` with the BUILTIN_REF op resolver (TensorFlow Lite's
reference kernels), outputs float.

The entry is cached under a key of its own (farm.models.cache: `cache_key(recipe, "dynamic")`
also hashes this module), next to the entries farm.models.build writes for the other
variants. TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from farm.config.variants import DYNAMIC
from farm.models import cache
from farm.models.convert import run_converter
from farm.models.artifacts import ModelArtifacts, cached_artifacts, save_artifacts
from farm.models.metrics import score
from farm.models.registry import Recipe, get_recipe

log = logging.getLogger(__name__)

VARIANT = DYNAMIC

#: the operators TensorFlow's dynamic-range quantizer makes hybrid
HYBRID_OPS: tuple[str, ...] = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def to_dynamic(keras_model: Any) -> bytes:
    """The dynamic-range conversion of `keras_model` (see module doc). Keras' export
    chatter ("Saved artifact at ...") is kept off stdout and sent to the debug log."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return run_converter(converter)


def run_builtin_ref(tflite: bytes, inputs: np.ndarray, *, batched: bool = False) -> np.ndarray:
    """Outputs of tf.lite.Interpreter with the BUILTIN_REF op resolver (TensorFlow Lite's
    reference kernels, hybrid ones included) for each input; `batched` as in
    farm.models.reference.run_tflm."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(
            model_content=tflite, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for sample in np.asarray(inputs):
        interpreter.set_tensor(in_index, sample if batched else sample[np.newaxis, ...])
        interpreter.invoke()
        out = np.array(interpreter.get_tensor(out_index))
        outputs.append(out if batched else out[0])
    return np.stack(outputs)


def hybrid_ops(graph: Any) -> list[tuple[int, str]]:
    """(index, opcode) of every hybrid operator of a farm.codegen.tflite_reader graph:
    a FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D with a float input and constant int8 weights."""
    found = []
    for op in graph.operators:
        if op.opcode not in HYBRID_OPS or len(op.inputs) < 2 or min(op.inputs[:2]) < 0:
            continue
        data, weights = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        if data.dtype == "float32" and weights.dtype == "int8" and weights.is_constant:
            found.append((op.index, op.opcode))
    return found


# --------------------------------------------------------------------------- the cache entry


def build_dynamic(model: str, cache_dir: Path) -> ModelArtifacts:
    """The dynamic variant of zoo model `model`, built into `cache_dir` unless cached
    (a hit does not import TensorFlow). A miss trains the recipe (its seeds make the
    weights those of the other variants' entry) and converts this variant only."""
    recipe = get_recipe(model)
    key = cache.cache_key(recipe, VARIANT)
    directory = cache.entry_dir(Path(cache_dir), recipe.name, key)
    hit = cached_artifacts(directory, VARIANT)
    if hit is not None:
        return hit
    with cache.entry_lock(directory):
        hit = cached_artifacts(directory, VARIANT)  # another process may have built it meanwhile
        if hit is not None:
            return hit
        log.info("building model %s/%s (cache key %s) into %s", recipe.name, VARIANT, key[:16], directory)
        return _build(recipe, key, directory)


def _build(recipe: Recipe, key: str, directory: Path) -> ModelArtifacts:
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise RuntimeError(f"building model {recipe.name!r} needs TensorFlow "
                           f"(it is not in the cache): {exc}") from exc
    from farm.codegen.tflite_reader import parse_tflite

    trained = recipe.train(recipe.params)
    tflite = to_dynamic(trained.keras_model)
    graph = parse_tflite(tflite).main
    for which, index in (("input", graph.inputs[0]), ("output", graph.outputs[0])):
        dtype = graph.tensors[index].dtype
        if dtype != "float32":
            raise RuntimeError(f"{recipe.name}/{VARIANT}: the converted model's {which} is {dtype}, "
                               "expected float32 (dynamic-range models keep float I/O)")
    inputs = np.asarray(trained.test_inputs, dtype=np.float32)
    truth = np.asarray(trained.ground_truth, dtype=np.float32)
    ref_outputs = run_builtin_ref(tflite, inputs).astype(np.float32)
    fields: dict[str, Any] = {
        "name": recipe.name,
        "variant": VARIANT,
        "test_inputs": inputs,
        "ref_outputs": ref_outputs,
        "ground_truth": truth,
        "metric": recipe.metric,
        "host_metric": score(recipe.metric, ref_outputs, truth),
        "input_scale": 0.0,
        "input_zero_point": 0,
        "output_scale": 0.0,
        "output_zero_point": 0,
        "latency_only": bool(recipe.latency_only),
        "cache_key": key,
        "tf_version": tf.__version__,
        "measure_plan": dict(recipe.measure),
    }
    return save_artifacts(directory, fields, tflite)
