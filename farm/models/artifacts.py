"""`ModelArtifacts` and its on-disk form: one cache entry per (model, variant).

An entry is three files side by side, named after the variant:

    <variant>.tflite   the model
    <variant>.npz      test_inputs, ref_outputs, ground_truth
    <variant>.json     everything else (written last: its presence marks the entry complete)

Loading an entry needs numpy only, never TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from farm.models.quantization import dequantize

log = logging.getLogger(__name__)

ENTRY_FORMAT = 1


class CorruptEntryError(RuntimeError):
    """A cache entry exists but does not load (or its .tflite hash does not match)."""


@dataclass(frozen=True, eq=False)
class ModelArtifacts:
    name: str
    variant: str
    tflite_path: Path
    sha256: str
    size_bytes: int
    test_inputs: np.ndarray  # N x input shape (no batch), in the model input's dtype
    ref_outputs: np.ndarray  # N x output shape (no batch), in the output dtype
    ground_truth: np.ndarray  # float, N x ...
    metric: str  # "mae" (lower is better) | "accuracy"
    host_metric: float  # `metric` of ref_outputs against ground_truth
    input_scale: float  # int8 I/O quantization; 0.0 / 0 for float I/O
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    latency_only: bool  # trained on generated data: accuracy meaningless
    cache_key: str = ""  # provenance: the content hash this entry was built under
    tf_version: str = ""
    #: overrides of farm.measure.timing.MeasurePlan for this model (few samples, short runs for slow models)
    measure_plan: dict[str, Any] = field(default_factory=dict)

    @property
    def quantized_io(self) -> bool:
        return self.output_scale != 0.0

    def outputs_to_float(self, outputs: np.ndarray) -> np.ndarray:
        """Outputs in the model's output dtype (as a device returns them) -> float32."""
        if self.quantized_io:
            return dequantize(outputs, self.output_scale, self.output_zero_point)
        return np.asarray(outputs, dtype=np.float32)


_ARRAYS = ("test_inputs", "ref_outputs", "ground_truth")


def save_artifacts(directory: Path, art_fields: dict[str, Any], tflite: bytes) -> ModelArtifacts:
    """Write an entry for `art_fields` (ModelArtifacts fields minus the file ones).

    Returns the ModelArtifacts pointing at the written .tflite. Each file is
    written to a temporary name and renamed, the .json last.
    """
    directory.mkdir(parents=True, exist_ok=True)
    variant = art_fields["variant"]
    tflite_path = directory / f"{variant}.tflite"
    art = ModelArtifacts(
        tflite_path=tflite_path,
        sha256=hashlib.sha256(tflite).hexdigest(),
        size_bytes=len(tflite),
        **art_fields,
    )
    _atomic_write(tflite_path, tflite)
    npz_path = directory / f"{variant}.npz"
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **{k: getattr(art, k) for k in _ARRAYS})
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, npz_path)

    meta = {f.name: getattr(art, f.name) for f in fields(art) if f.name not in _ARRAYS}
    meta["tflite_path"] = tflite_path.name
    meta["format"] = ENTRY_FORMAT
    _atomic_write(directory / f"{variant}.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    return art


def load_artifacts(directory: Path, variant: str) -> ModelArtifacts | None:
    """The entry for `variant` in `directory`, or None when it is not (fully) there."""
    json_path = directory / f"{variant}.json"
    if not json_path.is_file():
        return None
    try:
        meta = json.loads(json_path.read_text())
        if meta.pop("format", None) != ENTRY_FORMAT:
            return None
        tflite_path = directory / meta.pop("tflite_path")
        digest = hashlib.sha256(tflite_path.read_bytes()).hexdigest()
        if digest != meta["sha256"]:
            raise CorruptEntryError(f"{tflite_path}: sha256 {digest[:16]} does not match the "
                                    f"entry's {meta['sha256'][:16]}")
        with np.load(directory / f"{variant}.npz") as npz:
            arrays = {k: npz[k] for k in _ARRAYS}
        return ModelArtifacts(tflite_path=tflite_path, **meta, **arrays)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise CorruptEntryError(f"cache entry {json_path} does not load: {exc}") from exc


def cached_artifacts(directory: Path, variant: str) -> ModelArtifacts | None:
    """`load_artifacts`, a corrupt entry logged and taken as a miss (its builder rebuilds it)."""
    try:
        return load_artifacts(directory, variant)
    except CorruptEntryError as exc:
        log.warning("%s; rebuilding", exc)
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=path.suffix, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)
