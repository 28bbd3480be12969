"""Content-hash cache of built models.

The key is the sha256 of everything a built model depends on: the recipe's source
file, its parameters, the TensorFlow and tflite-micro versions (read from the
installed distributions' metadata, so no import), and the code that turns a
trained model into a cache entry (the converter version constant and the source
of the modules in `_CODE_FILES`).
An unchanged recipe is neither retrained nor reconverted.

A variant built outside farm.models.build (`VARIANT_CODE_FILES`: the dynamic variant, by
farm.models.dynamic_range) has a key of its own: the same material plus the variant and its
builder's source. So adding such a variant changes no existing entry's key, and editing its
builder rebuilds that variant only.

Layout: ``<cache_dir>/<model>-<key[:16]>/<variant>.{tflite,npz,json}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
from collections.abc import Iterator
from pathlib import Path

from farm.models import convert
from farm.models.registry import Recipe

CACHE_FORMAT = 1

#: modules whose source shapes an entry (conversion, references, quantization, scoring)
_CODE_FILES = ("convert.py", "reference.py", "quantization.py", "build.py", "metrics.py", "artifacts.py",
               "training.py")

#: variants built outside build.py -> the modules (hashed into that variant's key only) that build them
VARIANT_CODE_FILES: dict[str, tuple[str, ...]] = {
    "dynamic": ("dynamic_range.py",),
}

_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly", "tf-nightly-cpu")


def _distribution_version(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not-installed"


def tensorflow_version() -> str:
    return _distribution_version(_TF_DISTRIBUTIONS)


def tflite_micro_version() -> str:
    return _distribution_version(("tflite-micro", "tflite_micro"))


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(recipe: Recipe, variant: str | None = None) -> str:
    """sha256 hex of the recipe source, params, TF/TFLM versions and converter code;
    for a variant of `VARIANT_CODE_FILES`, also of that variant and its builder's source
    (any other variant: the key of the entry farm.models.build writes)."""
    here = Path(__file__).resolve().parent
    material = {
        "cache_format": CACHE_FORMAT,
        "recipe": recipe.name,
        "recipe_source": _file_sha256(recipe.source_file),
        "params": dict(recipe.params),
        "metric": recipe.metric,
        "latency_only": recipe.latency_only,
        "measure": dict(recipe.measure),
        "tensorflow": tensorflow_version(),
        "tflite_micro": tflite_micro_version(),
        "converter_version": convert.CONVERTER_VERSION,
        "converter_code": {name: _file_sha256(here / name) for name in _CODE_FILES},
    }
    builder = VARIANT_CODE_FILES.get(variant or "")
    if builder:
        material["variant"] = variant
        material["variant_code"] = {name: _file_sha256(here / name) for name in builder}
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def entry_dir(cache_dir: Path, model: str, key: str) -> Path:
    return Path(cache_dir) / f"{model}-{key[:16]}"


@contextlib.contextmanager
def entry_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on an entry, so concurrent builders train a model once."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.parent / f".{directory.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
