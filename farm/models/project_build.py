"""Build (or load from cache) a project model's variants from its files: keras, SavedModel, .tflite.

The variants are made the seed's way, into the zoo's cache layout (`ModelArtifacts`,
``<cache_dir>/<model>-<key[:16]>/<variant>.*``), so everything downstream takes them as it
takes the zoo's:

- ``float32``:      the TFLite converter, no optimizations;
- ``dynamic``:      ``Optimize.DEFAULT`` only (dynamic-range quantization: hybrid ops);
- ``int8``:         ``Optimize.DEFAULT`` + the representative dataset + ``TFLITE_BUILTINS_INT8``,
                    int8 input and output;
- ``int8-weights``: the farm's own rewrite of the float32 file (farm.models.convert.weights_to_int8).

A Keras file is loaded with Keras (a free batch dimension becomes a batch of one, as the
zoo's models are built) and converted ``from_keras_model``; a SavedModel directory with
``TFLiteConverter.from_saved_model`` (Keras 3 does not load SavedModels). A ``tflite`` source's
files are taken as they are. A conversion that fails says which step and why
(`ModelConversionError`, a ModelSourceError on the ``source`` field).

Test inputs are the data's test split, quantized with the file's input quantization for an
int8 input; the host reference runs over the whole split with the interpreter the device must
match (tflite-micro for int8: bit-exact; BUILTIN_REF for dynamic; TensorFlow for float), and
the host metric is the model's metric of it. A model without data gets seeded inputs (as a
lone .tflite does) and is latency-only.

The key hashes the source files, the data (the arrays as loaded), the metric (and a user
metric's module), variants, measurement plan, TensorFlow / tflite-micro versions and this code.
A hit imports no TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from farm.config.variants import VARIANTS
from farm.models import cache, data_files, project_files
from farm.models.artifacts import ModelArtifacts, cached_artifacts, save_artifacts
from farm.models.convert import CONVERTER_VERSION, ConversionError, run_converter
from farm.models.data_files import ProjectData
from farm.models.metrics import MetricError, reconstruction_truth, score
from farm.models.project_model import ModelSourceError, ProjectModel
from farm.models.quantization import dequantize, quantize

log = logging.getLogger(__name__)

PROJECT_FORMAT = 1

#: the modules whose source shapes a project model's entry
CODE_FILES = ("project_build.py", "project_files.py", "data_files.py", "convert.py", "dynamic_range.py",
              "reference.py", "quantization.py", "metrics.py", "artifacts.py", "user_tflite.py")

#: what each conversion is, in the words its failure is reported with
STEPS: dict[str, str] = {
    "float32": "float32 conversion (TFLiteConverter, no optimizations)",
    "dynamic": "dynamic conversion (TFLiteConverter, Optimize.DEFAULT, no representative dataset)",
    "int8": ("int8 conversion (TFLiteConverter, Optimize.DEFAULT + representative dataset + "
             "TFLITE_BUILTINS_INT8, int8 input and output)"),
    "int8-weights": "int8-weights rewrite of the float32 file (int8 weights behind DEQUANTIZE)",
}

#: the host reference of each converted variant (a .tflite source: its file's, user_tflite.classify)
REFERENCE_OF: dict[str, str] = {"float32": "tensorflow", "int8-weights": "tensorflow",
                                "dynamic": "tflite-builtin-ref", "int8": "tflite-micro"}


class ModelConversionError(ModelSourceError, ConversionError):
    """A project model that could not be converted: the step that failed, and why."""


def build_project_variant(model: ProjectModel, variant: str, cache_dir: Path) -> ModelArtifacts:
    """The artifacts of project model `model` in `variant`, built into `cache_dir` unless
    cached. A miss converts every declared variant (so the next one is a hit)."""
    if variant not in model.variants:
        raise ValueError(f"model {model.name!r} does not declare variant {variant!r} "
                         f"(it declares: {', '.join(model.variants)})")
    data = data_files.load_data(model)
    if data is not None:
        data_files.check_metric_data(model, data)
    key = entry_key(model, data)
    directory = cache.entry_dir(Path(cache_dir), model.name, key)
    hit = cached_artifacts(directory, variant)
    if hit is not None:
        return hit
    with cache.entry_lock(directory):
        hit = cached_artifacts(directory, variant)
        if hit is not None:
            return hit
        log.info("building project model %s (cache key %s) into %s", model.name, key[:16], directory)
        built = build_all(model, data, key, directory)
    return built[variant]


# --------------------------------------------------------------------------- the key


def _array_digest(array: np.ndarray | None) -> str | None:
    if array is None:
        return None
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _metric_code(metric: str) -> str | None:
    """The sha256 of a ``module:function`` metric's module source (None for the farm's metrics)."""
    if ":" not in metric:
        return None
    spec = importlib.util.find_spec(metric.partition(":")[0])
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def entry_key(model: ProjectModel, data: ProjectData | None) -> str:
    """The content hash of everything `model`'s entry depends on (module doc)."""
    here = Path(__file__).resolve().parent
    material = {
        "project_format": PROJECT_FORMAT,
        "model": model.name,
        "source": model.source.kind,
        "source_files": project_files.source_digest(model),
        "data": None if data is None else {
            "test": _array_digest(data.inputs), "labels": _array_digest(data.labels),
            "representative": _array_digest(data.representative)},
        "metric": model.metric,
        "metric_code": _metric_code(model.metric),
        "variants": sorted(model.variants),
        "measure": dict(model.measure),
        "tensorflow": cache.tensorflow_version(),
        "tflite_micro": cache.tflite_micro_version(),
        "converter_version": CONVERTER_VERSION,
        "code": {name: hashlib.sha256((here / name).read_bytes()).hexdigest() for name in CODE_FILES},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- conversion


@contextlib.contextmanager
def _step(model: ProjectModel, step: str) -> Iterator[None]:
    """Report a failure inside as `step` of `model` having failed, with the converter's reason."""
    try:
        yield
    except ModelSourceError:
        raise
    except Exception as exc:  # noqa: BLE001  (TensorFlow raises many kinds; each is the step's failure)
        raise ModelConversionError(f"model {model.name!r}: {step} failed: {_reason(exc)}",
                                   ("source", model.source.kind)) from exc


def _reason(exc: BaseException) -> str:
    """The informative part of a converter error: its ``error:`` messages without their MLIR
    locations (and the ops it would need TF Select for), else its first line."""
    text = str(exc).strip() or type(exc).__name__
    found: list[str] = []
    for line in text.splitlines():
        if "error:" not in line.lower():
            continue
        message = line[line.lower().index("error:") + len("error:"):].strip()
        if message.startswith("loc("):
            message = message.rsplit("): ", 1)[-1]  # after the location
        if message and not message.startswith("failed while converting") and message not in found:
            found.append(message)
    found += [line.strip() for line in text.splitlines() if line.strip().startswith("TF Select ops:")][:1]
    reason = "; ".join(found[:4]) or text.splitlines()[0]
    reason = reason if len(reason) <= 600 else reason[:600] + "..."
    return f"{type(exc).__name__}: {reason}"


def load_keras(model: ProjectModel) -> Any:
    """The Keras model of a ``keras`` source, with a fixed batch of one."""
    import keras

    path = model.path(model.source.keras or "")
    with _step(model, f"loading the Keras model {model.source.keras}"):
        loaded = keras.models.load_model(path, compile=False)
    try:
        inputs, outputs = list(loaded.inputs), list(loaded.outputs)
    except (AttributeError, ValueError) as exc:
        raise ModelSourceError(f"{path}: the model has no known inputs ({exc}); build it with keras.Input",
                               ("source", "keras")) from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelSourceError(f"{path}: the model has {len(inputs)} inputs and {len(outputs)} outputs; the farm "
                               "measures models with one of each", ("source", "keras"))
    shape = tuple(inputs[0].shape)
    if any(d is None for d in shape[1:]):
        raise ModelSourceError(f"{path}: the input shape {shape} has free dimensions besides the batch; "
                               "a microcontroller model needs a fixed input shape", ("source", "keras"))
    if shape[0] == 1:
        return loaded
    with _step(model, "fixing the batch to one (keras.Input(batch_size=1) around the model)"):
        fixed_in = keras.Input(shape=shape[1:], batch_size=1, dtype=inputs[0].dtype)
        return keras.Model(fixed_in, loaded(fixed_in), name=loaded.name)


def _representative(samples: np.ndarray, full_shape: tuple[int, ...]) -> Any:
    def dataset() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [np.asarray(sample, dtype=np.float32).reshape(full_shape)]

    return dataset


def _converter(keras_model: Any, saved_model_dir: Path | None) -> Any:
    import tensorflow as tf

    if keras_model is not None:
        return tf.lite.TFLiteConverter.from_keras_model(keras_model)
    return tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))


def _convert(model: ProjectModel, keras_model: Any, saved_model_dir: Path | None, variant: str,
             rep: np.ndarray | None = None, full_shape: tuple[int, ...] = ()) -> bytes:
    import tensorflow as tf

    with _step(model, STEPS[variant]):
        converter = _converter(keras_model, saved_model_dir)
        if variant in ("dynamic", "int8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "int8":
            converter.representative_dataset = _representative(rep, full_shape)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return run_converter(converter)


def saved_model_with_batch_of_one(model: ProjectModel, scratch: Path) -> Path:
    """The SavedModel directory to convert: the source itself when its serving signature has a
    batch of one, else a copy re-saved into `scratch` whose signature has one (a free batch
    makes the converter compute RESHAPE's shape at run time: SHAPE / STRIDED_SLICE / PACK)."""
    import tensorflow as tf

    path = model.path(model.source.saved_model or "")
    field = ("source", "saved_model")
    with _step(model, f"loading the SavedModel {model.source.saved_model}"):
        loaded = tf.saved_model.load(str(path))
        signatures = dict(loaded.signatures)
    if not signatures:
        raise ModelSourceError(f"{path}: the SavedModel has no signature to convert (export it with "
                               "model.export(...) or tf.saved_model.save(..., signatures=...))", field)
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    args, kwargs = signatures[key].structured_input_signature
    specs = list(args) + list(kwargs.values())
    if len(specs) != 1:
        raise ModelSourceError(f"{path}: signature {key!r} has {len(specs)} inputs; the farm measures models "
                               "with one", field)
    spec = specs[0]
    shape = list(spec.shape)
    if not shape or shape[0] == 1:
        return path
    if any(d is None for d in shape[1:]):
        raise ModelSourceError(f"{path}: the input shape {tuple(shape)} has free dimensions besides the batch; "
                               "a microcontroller model needs a fixed input shape", field)
    name = next(iter(kwargs)) if kwargs else None

    class BatchOfOne(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = loaded  # tracked, so its variables are saved with the copy

        @tf.function(input_signature=[tf.TensorSpec([1, *shape[1:]], spec.dtype, name=name or "input")])
        def serve(self, x: Any) -> Any:
            function = self.inner.signatures[key]
            return function(**{name: x}) if name else function(x)

    with _step(model, "fixing the SavedModel's batch to one (its signature re-saved with a batch of one)"):
        fixed = BatchOfOne()
        target = Path(scratch) / "batch-of-one"
        tf.saved_model.save(fixed, str(target), signatures={"serving_default": fixed.serve})
    return target


def converted_files(model: ProjectModel, data: ProjectData | None) -> dict[str, bytes]:
    """{variant: .tflite bytes} of every declared variant of a keras / SavedModel source."""
    with tempfile.TemporaryDirectory(prefix="farm-saved-model-") as scratch:
        keras_model = load_keras(model) if model.source.kind == "keras" else None
        saved_model_dir = None if keras_model is not None else saved_model_with_batch_of_one(model, Path(scratch))
        return _converted(model, data, keras_model, saved_model_dir)


def _converted(model: ProjectModel, data: ProjectData | None, keras_model: Any,
               saved_model_dir: Path | None) -> dict[str, bytes]:
    from farm.codegen.tflite_reader import parse_tflite
    from farm.models.convert import weights_to_int8

    float32 = _convert(model, keras_model, saved_model_dir, "float32")
    graph = parse_tflite(float32).main
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelSourceError(f"the converted model has {len(graph.inputs)} inputs and {len(graph.outputs)} "
                               "outputs; the farm measures models with one of each", ("source", model.source.kind))
    in_t, out_t = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    full_shape = tuple(int(d) for d in in_t.shape)
    source = model.source.keras or model.source.saved_model
    if data is not None:  # the data against the model, before the longer conversions
        _, rep = data_files.matched_inputs(data, project_files.sample_shape(full_shape),
                                           f"{source} (input {full_shape})", _data_field(model))
        data_files.check_outputs(model, data, project_files.sample_shape(tuple(int(d) for d in out_t.shape)),
                                 str(source))
    else:
        rep = _generated(project_files.sample_shape(full_shape))
    files = {"float32": float32}
    for variant in model.variants:
        if variant == "int8-weights":
            with _step(model, STEPS[variant]):
                files[variant] = weights_to_int8(float32)
        elif variant in ("dynamic", "int8"):
            files[variant] = _convert(model, keras_model, saved_model_dir, variant, rep, full_shape)
    return {v: files[v] for v in VARIANTS if v in model.variants}


def _data_field(model: ProjectModel) -> tuple[str, ...]:
    return ("data", "loader") if model.data is not None and model.data.loader else ("data", "test")


def _generated(sample_shape: tuple[int, ...]) -> np.ndarray:
    from farm.models.user_tflite import SAMPLES, SEED, generate_inputs

    return generate_inputs(sample_shape, "float32", SAMPLES, SEED)


# --------------------------------------------------------------------------- the entries


def build_all(model: ProjectModel, data: ProjectData | None, key: str, directory: Path) -> dict[str, ModelArtifacts]:
    """Convert (or read) every declared variant of `model` and write its entry into `directory`."""
    kind = model.source.kind
    if kind in ("keras", "saved_model"):
        try:
            import tensorflow  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"building model {model.name!r} needs TensorFlow (it is not in the cache): "
                               f"{exc}") from exc
        files = converted_files(model, data)
        references = dict(REFERENCE_OF)
    elif kind == "tflite":
        from farm.models.user_tflite import classify

        files, references = {}, {}
        for variant, path in project_files.tflite_files(model).items():
            graph = project_files.tflite_graph(model, variant, path)
            files[variant] = path.read_bytes()
            references[variant] = classify(graph).reference
    else:
        raise ValueError(f"model {model.name!r}: a {kind} source is built as a recipe, not from files")
    return {variant: _entry(model, variant, tflite, data, references[variant], key, directory)
            for variant, tflite in files.items()}


def _io_quant(tensor: Any, where: str, which: str) -> tuple[float, int]:
    if tensor.dtype == "float32":
        return 0.0, 0
    if tensor.dtype == "int8" and tensor.quant is not None and not tensor.quant.per_channel:
        return float(tensor.quant.scale), int(tensor.quant.zero_point)
    raise ModelSourceError(f"{where}: the model {which} is {tensor.dtype}; expected float32 or per-tensor int8",
                           ("source",))


def _run_reference(reference: str, tflite: bytes, inputs: np.ndarray, batched: bool) -> np.ndarray:
    from farm.models.dynamic_range import run_builtin_ref
    from farm.models.reference import run_tflite, run_tflm

    runner = {"tflite-micro": run_tflm, "tflite-builtin-ref": run_builtin_ref, "tensorflow": run_tflite}[reference]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(runner(tflite, inputs, batched=batched))


def ground_truth(model: ProjectModel, data: ProjectData, inputs_float: np.ndarray, outputs_shape: tuple[int, ...],
                 ) -> np.ndarray:
    """What the outputs (N x `outputs_shape`) are scored against: the labels, shaped for the
    metric; the inputs themselves without labels; labels and inputs for an autoencoder's roc-auc."""
    n = inputs_float.shape[0]
    out_size = int(np.prod(outputs_shape))
    in_size = int(np.prod(inputs_float.shape[1:]))
    if data.labels is None:
        return np.asarray(inputs_float, dtype=np.float32).reshape(n, *outputs_shape)
    labels = np.asarray(data.labels, dtype=np.float32)
    if model.metric == "roc-auc" and out_size == in_size and out_size > 2:
        return reconstruction_truth(labels, inputs_float)
    if model.metric in data_files.RECONSTRUCTION_METRICS and int(np.prod(labels.shape[1:])) == out_size:
        return labels.reshape(n, *outputs_shape)
    return labels


def _entry(model: ProjectModel, variant: str, tflite: bytes, data: ProjectData | None, reference: str, key: str,
           directory: Path) -> ModelArtifacts:
    from farm.codegen.tflite_reader import parse_tflite

    where = f"{model.name}/{variant}"
    graph = parse_tflite(tflite).main
    in_t, out_t = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    in_q, out_q = _io_quant(in_t, where, "input"), _io_quant(out_t, where, "output")
    shape = tuple(int(d) for d in in_t.shape)
    batched = not (shape and shape[0] == 1)  # no batch of one: each sample is the whole input
    sample = project_files.sample_shape(shape)
    if data is None:
        x = _generated(sample)
    else:
        x, _ = data_files.matched_inputs(data, sample, f"{where} (input {shape})", _data_field(model))
    inputs = quantize(x, *in_q) if in_q[0] else np.asarray(x, dtype=np.float32)
    with _step(model, f"the host reference of {where} ({reference})"):
        ref = _run_reference(reference, tflite, inputs, batched)
    ref = ref.astype(np.int8 if out_t.dtype == "int8" else np.float32)
    ref_float = dequantize(ref, *out_q) if out_q[0] else ref
    if data is None:
        metric, truth, latency_only = "mae", ref_float.astype(np.float32), True
    else:
        metric, latency_only = model.metric, False
        truth = ground_truth(model, data, x, tuple(ref_float.shape[1:]))
    try:
        host_metric = score(metric, ref_float, truth)
    except MetricError as exc:
        raise ModelSourceError(f"{where}: the metric does not score the model's outputs "
                               f"{tuple(ref_float.shape[1:])} against the labels: {exc}", ("metric",)) from None
    fields: dict[str, Any] = {
        "name": model.name,
        "variant": variant,
        "test_inputs": inputs,
        "ref_outputs": ref,
        "ground_truth": np.asarray(truth, dtype=np.float32),
        "metric": metric,
        "host_metric": float(host_metric),
        "input_scale": in_q[0],
        "input_zero_point": in_q[1],
        "output_scale": out_q[0],
        "output_zero_point": out_q[1],
        "latency_only": latency_only,
        "cache_key": key,
        "tf_version": cache.tensorflow_version(),
        "measure_plan": dict(model.measure),
    }
    return save_artifacts(directory, fields, tflite)
