"""A user's own .tflite as model artifacts, so it is measured like a zoo model (`farm run --model PATH`).

The file decides its variant (`classify`):

- ``dynamic``: a hybrid FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D (float input, constant
  int8 weights: TensorFlow's dynamic-range quantization);
- ``int8``: an int8 input (full integer);
- ``int8-weights``: a DEQUANTIZE of a constant int8 tensor (weights stored int8, computed in float);
- ``float32``: anything else.

Test inputs are generated from the input tensor's shape, dtype and quantization with a fixed
seed (float: uniform in [-1, 1]; int8: uniform over the int8 range), so the same file gives the
same inputs on every run. The reference outputs come from the interpreter the device must
match: tflite-micro for int8 I/O files without hybrid ops (bit-exact), ``tf.lite.Interpreter``
with BUILTIN_REF for hybrid files (TFLM refuses them), TensorFlow's interpreter for float.
There is no ground truth: the metric is the mean absolute error against that reference (the
host's is 0) and the model is latency-only.

The artifacts are cached in ``<cache_dir>/file-<stem>-<key[:16]>/<variant>.*``, keyed by the
file's sha256, the sample count and seed, the TensorFlow and tflite-micro versions and this
code; a hit imports no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.models import cache, dynamic_range
from farm.models.artifacts import ModelArtifacts, cached_artifacts, save_artifacts
from farm.models.quantization import dequantize
from farm.models.reference import run_tflite, run_tflm

log = logging.getLogger(__name__)

#: test inputs generated for a user's file, and their seed
SAMPLES = 8
SEED = 20240613

#: the metric of a user's file: mean absolute error against the host reference (no ground truth)
METRIC = "mae"

#: the modules whose source shapes a user model's entry (with this one)
_CODE_FILES = ("user_tflite.py", "dynamic_range.py", "reference.py", "quantization.py", "artifacts.py", "metrics.py")


class UserModelError(ValueError):
    """A user's .tflite that cannot be made into artifacts (its file, and why)."""


@dataclass(frozen=True)
class Classified:
    """What a file is: its variant, the reference it is held to, and why (a sentence)."""

    variant: str
    reference: str  # "tflite-micro" | "tflite-builtin-ref" | "tensorflow"
    reason: str


def is_tflite_path(name: str) -> bool:
    """Whether a model name given on the command line is a path to a .tflite file."""
    return name.lower().endswith(".tflite")


def classify(graph: Any) -> Classified:
    """The variant of a farm.codegen.tflite_reader graph and the reference for it (module doc)."""
    hybrid = dynamic_range.hybrid_ops(graph)
    in_dtype = graph.tensors[graph.inputs[0]].dtype
    if hybrid:
        index, opcode = hybrid[0]
        return Classified("dynamic", "tflite-builtin-ref",
                          f"hybrid {opcode} (operator #{index}): float input, int8 weights")
    if in_dtype == "int8":
        return Classified("int8", "tflite-micro", "int8 input")
    dequantized = [op for op in graph.operators if op.opcode == "DEQUANTIZE" and op.inputs
                   and graph.tensors[op.inputs[0]].is_constant and graph.tensors[op.inputs[0]].dtype == "int8"]
    if dequantized:
        return Classified("int8-weights", "tensorflow",
                          f"int8 weights behind DEQUANTIZE (operator #{dequantized[0].index})")
    if any(op.opcode == "QUANTIZE" for op in graph.operators):  # float I/O around an integer graph
        return Classified("float32", "tflite-micro", "float input quantized inside the model")
    return Classified("float32", "tensorflow", "float input and weights")


def generate_inputs(shape: tuple[int, ...], dtype: str, samples: int = SAMPLES, seed: int = SEED) -> np.ndarray:
    """`samples` test inputs of `shape` (without the batch of one) in `dtype`, from `seed`."""
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.uniform(-1.0, 1.0, size=(samples, *shape)).astype(np.float32)
    if dtype == "int8":
        return rng.integers(-128, 128, size=(samples, *shape), dtype=np.int64).astype(np.int8)
    raise UserModelError(f"input dtype {dtype} is not supported (float32 or int8)")


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_key(sha256: str, samples: int, seed: int) -> str:
    """The cache key of a user file's entry (module doc)."""
    here = Path(__file__).resolve().parent
    material = {
        "file": sha256, "samples": samples, "seed": seed,
        "tensorflow": cache.tensorflow_version(), "tflite_micro": cache.tflite_micro_version(),
        "code": {name: _file_sha256(here / name) for name in _CODE_FILES},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def classify_file(path: Path) -> Classified:
    """`classify` of the .tflite at `path` (UserModelError for a file that is not one)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserModelError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    return classify(_graph(path, data))


def user_artifacts(path: Path, cache_dir: Path, *, samples: int = SAMPLES, seed: int = SEED) -> ModelArtifacts:
    """The artifacts of the .tflite at `path` (named after the file), built into `cache_dir`
    unless cached. Raises UserModelError for a file that is not a model the farm can
    measure (its message names the file)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserModelError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    sha = hashlib.sha256(data).hexdigest()
    directory = Path(cache_dir) / f"file-{path.stem}-{entry_key(sha, samples, seed)[:16]}"
    graph = _graph(path, data)
    kind = classify(graph)
    hit = cached_artifacts(directory, kind.variant)
    if hit is not None:
        return hit
    with cache.entry_lock(directory):
        return _build(path, data, graph, kind, directory, samples, seed)


def _graph(path: Path, data: bytes) -> Any:
    from farm.codegen.tflite_reader import parse_tflite

    try:
        graph = parse_tflite(data).main
    except Exception as exc:  # the reader's own errors, and what a corrupt flatbuffer raises
        raise UserModelError(f"{path}: not a TFLite model ({exc})") from None
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UserModelError(f"{path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                             "the farm measures models with one of each")
    return graph


def _io_quant(tensor: Any, path: Path, which: str) -> tuple[float, int]:
    if tensor.dtype == "float32":
        return 0.0, 0
    if tensor.dtype == "int8" and tensor.quant is not None and not tensor.quant.per_channel:
        return float(tensor.quant.scale), int(tensor.quant.zero_point)
    raise UserModelError(f"{path}: the model {which} {tensor.name!r} is {tensor.dtype}; "
                         "expected float32 or per-tensor int8")


def _build(path: Path, data: bytes, graph: Any, kind: Classified, directory: Path, samples: int,
           seed: int) -> ModelArtifacts:
    in_t, out_t = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    in_q, out_q = _io_quant(in_t, path, "input"), _io_quant(out_t, path, "output")
    shape = tuple(int(d) for d in in_t.shape)
    sample_shape = shape[1:] if shape and shape[0] == 1 else shape
    inputs = generate_inputs(sample_shape, in_t.dtype, samples, seed)
    batched = not (shape and shape[0] == 1)  # no batch of one: each sample is the whole input
    runner = {"tflite-micro": run_tflm, "tflite-builtin-ref": dynamic_range.run_builtin_ref,
              "tensorflow": run_tflite}[kind.reference]
    ref_outputs = np.asarray(runner(data, inputs, batched=batched))
    ref_outputs = ref_outputs.astype(np.int8 if out_t.dtype == "int8" else np.float32)
    truth = dequantize(ref_outputs, *out_q) if out_q[0] else ref_outputs.astype(np.float32)
    fields: dict[str, Any] = {
        "name": path.name,
        "variant": kind.variant,
        "test_inputs": inputs,
        "ref_outputs": ref_outputs,
        "ground_truth": np.asarray(truth, dtype=np.float32),
        "metric": METRIC,
        "host_metric": 0.0,
        "input_scale": in_q[0],
        "input_zero_point": in_q[1],
        "output_scale": out_q[0],
        "output_zero_point": out_q[1],
        "latency_only": True,
        "cache_key": directory.name,
        "tf_version": cache.tensorflow_version(),
        "measure_plan": {},
    }
    log.info("model file %s: %s (%s); reference: %s", path, kind.variant, kind.reason, kind.reference)
    return save_artifacts(directory, fields, data)
