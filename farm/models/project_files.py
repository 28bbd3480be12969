"""A project model's source files: checked cheaply, hashed, sized, described (no TensorFlow).

- ``keras``: a ``.keras`` file (a zip with ``config.json``) or an ``.h5`` (HDF5); the input
  shape of a ``.keras`` file is read from its ``config.json`` when it names one InputLayer.
- ``saved_model``: a directory with ``saved_model.pb``; its input shape is known when it is
  converted (farm.models.project_build).
- ``tflite``: one file per declared variant, read by the farm's own reader; each file's
  variant (farm.models.user_tflite.classify) must be the one it is declared as.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from farm.config.variants import VARIANTS
from farm.models.data_files import ProjectData, check_outputs, matched_inputs
from farm.models.project_model import ModelSourceError, ProjectModel

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def check_source(model: ProjectModel) -> None:
    """The source is there and is what it claims to be (module doc)."""
    kind = model.source.kind
    if kind == "keras":
        _check_keras(model)
    elif kind == "saved_model":
        _check_saved_model(model)
    elif kind == "tflite":
        for variant, path in tflite_files(model).items():
            tflite_graph(model, variant, path)


def tflite_files(model: ProjectModel) -> dict[str, Path]:
    """{declared variant: its file} of a ``tflite`` source (each declared variant has one)."""
    given = dict(model.source.tflite or {})
    for variant in given:
        if variant not in VARIANTS:
            raise ModelSourceError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}",
                                   ("source", "tflite", str(variant)))
    missing = [v for v in model.variants if v not in given]
    if missing:
        raise ModelSourceError(f"variant(s) {', '.join(missing)} declared but source.tflite has no file for "
                               f"{'it' if len(missing) == 1 else 'them'} (it gives {', '.join(given) or 'none'}); "
                               "declare variants: [" + ", ".join(v for v in VARIANTS if v in given) + "]",
                               ("variants",))
    return {v: model.path(given[v]) for v in VARIANTS if v in model.variants}


def tflite_graph(model: ProjectModel, variant: str, path: Path) -> Any:
    """The main graph of a declared variant's .tflite, its variant checked against the file."""
    from farm.codegen.tflite_reader import parse_tflite
    from farm.models.user_tflite import classify

    field = ("source", "tflite", variant)
    if not path.is_file():
        raise ModelSourceError(f"{path}: no such file" if not path.exists() else f"{path}: not a file", field)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelSourceError(f"{path}: cannot read it ({exc.strerror or exc})", field) from None
    try:
        graph = parse_tflite(data).main
    except Exception as exc:  # noqa: BLE001  (the reader's errors and what a corrupt flatbuffer raises)
        raise ModelSourceError(f"{path}: not a TFLite model ({exc})", field) from None
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelSourceError(f"{path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                               "the farm measures models with one of each", field)
    for which, index in (("input", graph.inputs[0]), ("output", graph.outputs[0])):
        tensor = graph.tensors[index]
        if tensor.dtype not in ("float32", "int8") or (tensor.dtype == "int8" and (
                tensor.quant is None or tensor.quant.per_channel)):
            raise ModelSourceError(f"{path}: the model {which} {tensor.name!r} is {tensor.dtype}"
                                   f"{' without per-tensor quantization' if tensor.dtype == 'int8' else ''}; "
                                   "expected float32 or per-tensor int8", field)
    kind = classify(graph)
    if kind.variant != variant:
        raise ModelSourceError(f"{path}: declared {variant}, but the file is a {kind.variant} model "
                               f"({kind.reason}); declare it as {kind.variant}", field)
    return graph


def sample_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A model input's shape without its batch of one."""
    return tuple(shape[1:]) if shape and shape[0] == 1 else tuple(shape)


def check_data_against_source(model: ProjectModel, data: ProjectData) -> None:
    """The data's samples are shaped like the model input, and the labels fit its output,
    where that is known without TensorFlow (a .tflite; a .keras file's input)."""
    kind = model.source.kind
    if kind == "tflite":
        for variant, path in tflite_files(model).items():
            graph = tflite_graph(model, variant, path)
            in_t, out_t = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
            where = f"{path.name} (input {tuple(int(d) for d in in_t.shape)})"
            matched_inputs(data, sample_shape(tuple(int(d) for d in in_t.shape)), where, _data_field(model))
            check_outputs(model, data, sample_shape(tuple(int(d) for d in out_t.shape)), path.name)
    elif kind == "keras":
        shape = keras_input_shape(model.path(model.source.keras or ""))
        if shape is not None:
            where = f"{model.source.keras} (input {(None, *shape)})"
            matched_inputs(data, shape, where, _data_field(model))


def _data_field(model: ProjectModel) -> tuple[str, ...]:
    return ("data", "loader") if model.data is not None and model.data.loader else ("data", "test")


def _check_keras(model: ProjectModel) -> None:
    path = model.path(model.source.keras or "")
    field = ("source", "keras")
    if not path.is_file():
        raise ModelSourceError(f"{path}: no such file" if not path.exists() else f"{path}: not a file", field)
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelSourceError(f"{path}: a Keras model is a .keras or .h5 file"
                               + (" (a directory is a saved_model)" if path.is_dir() else ""), field)
    try:
        head = path.open("rb").read(8)
    except OSError as exc:
        raise ModelSourceError(f"{path}: cannot read it ({exc.strerror or exc})", field) from None
    if path.suffix.lower() == ".keras":
        if not zipfile.is_zipfile(path):
            raise ModelSourceError(f"{path}: not a .keras file (a .keras file is a zip archive)", field)
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelSourceError(f"{path}: a corrupt .keras archive ({exc})", field) from None
        if bad is not None:
            raise ModelSourceError(f"{path}: a corrupt .keras archive ({bad} fails its checksum)", field)
        if "config.json" not in names:
            raise ModelSourceError(f"{path}: not a .keras file (no config.json in the archive)", field)
    elif head != _HDF5_SIGNATURE:
        raise ModelSourceError(f"{path}: not an HDF5 (.h5) file", field)


def _check_saved_model(model: ProjectModel) -> None:
    path = model.path(model.source.saved_model or "")
    field = ("source", "saved_model")
    if not path.exists():
        raise ModelSourceError(f"{path}: no such directory", field)
    if not path.is_dir():
        raise ModelSourceError(f"{path}: a SavedModel is a directory"
                               + (" (a .keras/.h5 file is a keras source)" if path.suffix in KERAS_SUFFIXES else ""),
                               field)
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise ModelSourceError(f"{path}: not a SavedModel directory (no saved_model.pb)", field)
    pb = path / "saved_model.pb"
    if pb.is_file() and pb.stat().st_size == 0:
        raise ModelSourceError(f"{pb}: empty", field)


def keras_input_shape(path: Path) -> tuple[int, ...] | None:
    """The per-sample input shape a ``.keras`` file's config.json declares (without the batch),
    or None when the file does not say it in one InputLayer (an .h5; a subclassed model)."""
    if path.suffix.lower() != ".keras":
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    layers = (config.get("config") or {}).get("layers") or []
    inputs = [layer for layer in layers if isinstance(layer, dict) and layer.get("class_name") == "InputLayer"]
    if len(inputs) != 1:
        return None
    shape = (inputs[0].get("config") or {}).get("batch_shape") or (inputs[0].get("config") or {}).get(
        "batch_input_shape")
    if not isinstance(shape, list) or len(shape) < 2 or any(not isinstance(d, int) for d in shape[1:]):
        return None
    return tuple(int(d) for d in shape[1:])


# --------------------------------------------------------------------------- identity, size, words


def source_files(model: ProjectModel) -> list[Path]:
    """Every file the source consists of (a SavedModel: every file under its directory)."""
    kind = model.source.kind
    if kind == "keras":
        return [model.path(model.source.keras or "")]
    if kind == "saved_model":
        root = model.path(model.source.saved_model or "")
        return sorted(p for p in root.rglob("*") if p.is_file())
    if kind == "tflite":
        return list(tflite_files(model).values())
    return []


def source_digest(model: ProjectModel) -> dict[str, str]:
    """{file (relative to the source): sha256} of the source, for the cache key."""
    kind = model.source.kind
    digest = {}
    if kind == "saved_model":
        root = model.path(model.source.saved_model or "")
        for p in source_files(model):
            digest[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    elif kind == "tflite":
        for variant, p in tflite_files(model).items():
            digest[variant] = hashlib.sha256(p.read_bytes()).hexdigest()
    else:
        for p in source_files(model):
            digest[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return digest


def source_file(model: ProjectModel) -> Path:
    """One file that stands for the source (a recipe's `source_file`)."""
    kind = model.source.kind
    if kind == "saved_model":
        return model.path(model.source.saved_model or "") / "saved_model.pb"
    if kind == "tflite":
        given = dict(model.source.tflite or {})
        return model.path(next(iter(given.values()))) if given else model.origin
    return model.path(model.source.keras or "")


def source_size(model: ProjectModel) -> tuple[str, int]:
    """(label, bytes) of the source on disk: a SavedModel directory's files together, a Keras file."""
    kind = model.source.kind
    size = sum(p.stat().st_size for p in source_files(model))
    if kind == "saved_model":
        return f"SavedModel {model.source.saved_model} (directory)", size
    return f"{kind} {model.source.keras if kind == 'keras' else ''}".strip(), size


def describe(model: ProjectModel) -> str:
    """The source in a few words (`farm models`)."""
    kind = model.source.kind
    if kind == "keras":
        return f"Keras model {model.source.keras}"
    if kind == "saved_model":
        return f"SavedModel {model.source.saved_model}"
    files = dict(model.source.tflite or {})
    return "TFLite files " + ", ".join(f"{v}: {p}" for v, p in files.items())
