"""A project model's data: test inputs, labels and the representative set, loaded and checked.

The forms (farm.models.project_model.DataFiles):

- ``test: x.npz``: arrays ``x`` (inputs, N x input shape) and ``y`` (labels or targets, N x ...);
- ``test: x.npy`` + ``labels: y.npy``;
- ``loader: module:function``: a function of the user's returning ``{"test": x, "labels": y,
  "representative": r}`` (labels and representative optional);
- ``representative: r.npy`` (or an ``.npz`` with ``x``): calibration inputs; default the test inputs.

Without labels the ground truth is the inputs themselves, which only a reconstruction
metric (mae, mse) can score. Every problem is a ModelSourceError naming its field
(``("data", "test")``...) and the file. numpy only: no TensorFlow.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.models.project_model import ModelSourceError, ProjectModel

#: metrics that can score a model against its own inputs (no labels: an autoencoder)
RECONSTRUCTION_METRICS: tuple[str, ...] = ("mae", "mse")

#: metrics whose labels are class indices (or one-hot rows)
CLASS_METRICS_PREFIXES: tuple[str, ...] = ("accuracy", "top-")


@dataclass(frozen=True, eq=False)
class ProjectData:
    """A model's data, as float32 inputs (N x sample shape) and labels as given."""

    inputs: np.ndarray
    labels: np.ndarray | None  # None: the inputs are the targets
    representative: np.ndarray
    where: Mapping[str, str]  # "test" / "labels" / "representative" -> the file (or loader) it came from

    @property
    def samples(self) -> int:
        return int(self.inputs.shape[0])


_LOADED: dict[tuple[str, str], Any] = {}


def load_data(model: ProjectModel) -> ProjectData | None:
    """The data of `model` (None when it declares none), checked on its own: readable,
    numeric, non-empty, as many labels as inputs, representative samples shaped like the
    test inputs. Shapes against the model input are checked by the caller."""
    data = model.data
    if data is None:
        return None
    if data.loader:
        if data.test or data.labels:
            raise ModelSourceError("give either a loader or test (and labels) files, not both", ("data", "loader"))
        return _from_loader(model, data.loader)
    if data.test is None:
        raise ModelSourceError("no test data: give test (a .npz with x and y, or a .npy with labels) or a loader",
                               ("data", "test"))
    test_path = model.path(data.test)
    where = {"test": str(data.test)}
    if test_path.suffix.lower() == ".npz":
        if data.labels is not None:
            raise ModelSourceError(f"{data.test} is a .npz (arrays x and y): labels come from its y; "
                                   "drop labels, or give test as a .npy", ("data", "labels"))
        arrays = _read_npz(test_path, ("data", "test"), required=("x",), optional=("y",))
        inputs, labels = arrays["x"], arrays.get("y")
        if labels is not None:
            where["labels"] = f"{data.test} (y)"
    else:
        inputs = _read_npy(test_path, ("data", "test"))
        labels = None
        if data.labels is not None:
            labels = _read_npy(model.path(data.labels), ("data", "labels"))
            where["labels"] = str(data.labels)
    representative = None
    if data.representative is not None:
        rep_path = model.path(data.representative)
        if rep_path.suffix.lower() == ".npz":
            representative = _read_npz(rep_path, ("data", "representative"), required=("x",), optional=())["x"]
        else:
            representative = _read_npy(rep_path, ("data", "representative"))
        where["representative"] = str(data.representative)
    return _checked(inputs, labels, representative, where,
                    ("data", "test"), ("data", "test" if test_path.suffix.lower() == ".npz" else "labels"),
                    ("data", "representative"))


def check_metric_data(model: ProjectModel, data: ProjectData) -> None:
    """The labels fit the metric: present unless the metric scores a reconstruction, class
    indices for accuracy / top-k, 0/1 for roc-auc."""
    field = ("data", "loader") if model.data and model.data.loader else (
        ("data", "test") if "(y)" in data.where.get("labels", "") else ("data", "labels"))
    metric = model.metric
    if data.labels is None:
        if metric not in RECONSTRUCTION_METRICS:
            raise ModelSourceError(
                f"no labels in {data.where['test']}: {metric} needs them (a .npz with y, or labels: a .npy); "
                f"only {' or '.join(RECONSTRUCTION_METRICS)} scores a model against its own inputs",
                ("data", "test") if model.data and model.data.test else field)
        return
    labels = data.labels
    if metric.startswith(CLASS_METRICS_PREFIXES) and labels.ndim == 1 and not _integral(labels):
        raise ModelSourceError(f"labels in {data.where['labels']} are not class indices (found "
                               f"{_first_fraction(labels)}); {metric} needs integers or one-hot rows", field)
    if metric.startswith(CLASS_METRICS_PREFIXES) and labels.ndim == 1 and labels.size and labels.min() < 0:
        raise ModelSourceError(f"labels in {data.where['labels']} are class indices below 0 ({labels.min():g})", field)
    if metric == "roc-auc":
        flat = labels.reshape(labels.shape[0], -1)
        if flat.shape[1] != 1 or not np.all(np.isin(flat, (0, 1))):
            raise ModelSourceError(f"labels in {data.where['labels']} must be one 0 (normal) or 1 (anomalous) "
                                   f"per sample for roc-auc (shape {labels.shape})", field)
        if len(np.unique(flat)) < 2:
            raise ModelSourceError(f"labels in {data.where['labels']} are all {int(flat[0, 0])}: roc-auc needs "
                                   "normal and anomalous samples", field)


def check_outputs(model: ProjectModel, data: ProjectData, output_shape: tuple[int, ...], where: str) -> None:
    """The labels fit the model's output (per sample shape `output_shape`): a class index
    below the number of classes, one-hot rows as wide as the output, targets shaped like it."""
    field = ("data", "loader") if model.data and model.data.loader else ("data", "labels")
    if data.labels is None:
        if int(np.prod(output_shape)) != int(np.prod(data.inputs.shape[1:])):
            raise ModelSourceError(f"no labels: {model.metric} would score the outputs against the inputs, but "
                                   f"{where} outputs {output_shape} per sample for inputs of "
                                   f"{data.inputs.shape[1:]}", ("data", "test"))
        return
    labels, metric = data.labels, model.metric
    size = int(np.prod(output_shape))
    source = data.where.get("labels", "the labels")
    if metric.startswith(CLASS_METRICS_PREFIXES):
        if labels.ndim == 1:
            if labels.size and int(labels.max()) >= size:
                raise ModelSourceError(f"{source}: class {int(labels.max())} but {where} has {size} outputs "
                                       f"(classes 0..{size - 1})", field)
        elif int(np.prod(labels.shape[1:])) != size:
            raise ModelSourceError(f"{source}: one-hot labels of {labels.shape[1:]} per sample but {where} "
                                   f"outputs {output_shape}", field)
    elif metric in RECONSTRUCTION_METRICS and int(np.prod(labels.shape[1:])) != size:
        raise ModelSourceError(f"{source}: targets of {labels.shape[1:]} per sample but {where} outputs "
                               f"{output_shape}; {metric} compares them value by value", field)


def matched_inputs(data: ProjectData, sample_shape: tuple[int, ...], where: str,
                   field: tuple[str, ...] = ("data", "test")) -> tuple[np.ndarray, np.ndarray]:
    """(test inputs, representative) shaped N x `sample_shape` (the model input without its
    batch of one); a sample stored with that batch of one is accepted. ModelSourceError when
    the samples are shaped otherwise."""
    out = []
    for name, array in (("test", data.inputs), ("representative", data.representative)):
        got = tuple(array.shape[1:])
        if got == tuple(sample_shape):
            out.append(array)
        elif got == (1, *sample_shape):
            out.append(array.reshape(array.shape[0], *sample_shape))
        else:
            raise ModelSourceError(
                f"{data.where.get(name, 'the ' + name + ' inputs')}: samples are shaped {got}, but {where} "
                f"takes {tuple(sample_shape)} per sample", ("data", name) if field[-1] != "loader" else field)
    return out[0], out[1]


# --------------------------------------------------------------------------- reading


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _starts_with(path: Path, magic: bytes, what: str, field: tuple[str, ...]) -> None:
    if not path.is_file():
        raise ModelSourceError(f"{path}: no such file" if not path.exists() else f"{path}: not a file", field)
    try:
        with path.open("rb") as f:
            head = f.read(len(magic))
    except OSError as exc:
        raise ModelSourceError(f"{path}: cannot read it ({exc.strerror or exc})", field) from None
    if head != magic:
        raise ModelSourceError(f"{path}: not a readable {what} file (it does not start like one)", field)


def _read_npy(path: Path, field: tuple[str, ...]) -> np.ndarray:
    if path.suffix.lower() == ".npz":
        raise ModelSourceError(f"{path}: expected a .npy file (one array) here", field)
    _starts_with(path, _NPY_MAGIC, ".npy", field)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelSourceError(f"{path}: holds Python objects (dtype object); give numeric arrays", field) from None
        raise ModelSourceError(f"{path}: not a readable .npy file ({exc})", field) from None
    except (OSError, EOFError) as exc:
        raise ModelSourceError(f"{path}: not a readable .npy file ({exc})", field) from None


def _read_npz(path: Path, field: tuple[str, ...], *, required: tuple[str, ...],
              optional: tuple[str, ...]) -> dict[str, np.ndarray]:
    _starts_with(path, _ZIP_MAGIC, ".npz", field)
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            missing = [k for k in required if k not in keys]
            if missing:
                raise ModelSourceError(f"{path}: no array {' or '.join(missing)} (it has: {', '.join(keys) or 'none'}); "
                                       f"expected {' and '.join(required + optional)}", field)
            return {k: npz[k] for k in required + optional if k in keys}
    except ModelSourceError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelSourceError(f"{path}: holds Python objects (dtype object); give numeric arrays", field) from None
        raise ModelSourceError(f"{path}: not a readable .npz file ({exc})", field) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelSourceError(f"{path}: not a readable .npz file ({exc})", field) from None


def _from_loader(model: ProjectModel, spec: str) -> ProjectData:
    field = ("data", "loader")
    key = (spec, str(Path(model.base_dir).resolve()))
    if key not in _LOADED:
        _LOADED[key] = call_loader(spec, field)
    result = _LOADED[key]
    if not isinstance(result, Mapping) or "test" not in result:
        raise ModelSourceError(f"loader {spec} returned {type(result).__name__}; expected a dict with "
                               "\"test\" (and \"labels\", \"representative\")", field)
    unknown = sorted(set(result) - {"test", "labels", "representative"})
    if unknown:
        raise ModelSourceError(f"loader {spec} returned unknown key(s) {', '.join(map(str, unknown))} "
                               "(known: test, labels, representative)", field)
    arrays = {}
    for name in ("test", "labels", "representative"):
        value = result.get(name)
        if value is not None:
            try:
                arrays[name] = np.asarray(value)
            except Exception as exc:  # noqa: BLE001  (whatever the user returned)
                raise ModelSourceError(f"loader {spec}: {name} is not an array ({exc})", field) from None
    where = {name: f"loader {spec} ({name})" for name in arrays}
    return _checked(arrays["test"], arrays.get("labels"), arrays.get("representative"), where, field, field, field)


def call_loader(spec: str, field: tuple[str, ...]) -> Any:
    """Import and call the ``module:function`` `spec` (the project's folder is on sys.path)."""
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ModelSourceError(f"loader {spec!r}: expected module:function (e.g. mypkg.data:load)", field)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001  (the user's module)
        raise ModelSourceError(f"loader {spec}: cannot import {module_name} ({type(exc).__name__}: {exc})",
                               field) from None
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ModelSourceError(f"loader {spec}: {module_name} has no function {function}", field)
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        raise ModelSourceError(f"loader {spec} failed: {type(exc).__name__}: {exc}", field) from None


# --------------------------------------------------------------------------- checks


def _numeric(array: np.ndarray, what: str, field: tuple[str, ...], *, allow_bool: bool) -> None:
    kind = array.dtype.kind
    if kind in "fiu" or (allow_bool and kind == "b"):
        return
    raise ModelSourceError(f"{what}: dtype {array.dtype} is not numeric; give "
                           f"{'integers or floats' if allow_bool else 'float (or integer) inputs'}", field)


def _checked(inputs: np.ndarray, labels: np.ndarray | None, representative: np.ndarray | None,
             where: dict[str, str], test_field: tuple[str, ...], labels_field: tuple[str, ...],
             rep_field: tuple[str, ...]) -> ProjectData:
    _numeric(inputs, where["test"], test_field, allow_bool=False)
    if inputs.ndim < 2:
        raise ModelSourceError(f"{where['test']}: inputs of shape {inputs.shape}; expected samples along the "
                               "first axis, each shaped like the model input (N x ...)", test_field)
    if inputs.shape[0] == 0:
        raise ModelSourceError(f"{where['test']}: the test split is empty (0 samples)", test_field)
    if not np.all(np.isfinite(inputs)):
        raise ModelSourceError(f"{where['test']}: inputs hold NaN or infinite values", test_field)
    if labels is not None:
        _numeric(labels, where["labels"], labels_field, allow_bool=True)
        if labels.ndim == 0 or labels.shape[0] != inputs.shape[0]:
            raise ModelSourceError(f"{where['labels']}: {labels.shape[0] if labels.ndim else 'no'} labels for "
                                   f"{inputs.shape[0]} test inputs; give one per sample", labels_field)
    if representative is None:
        representative = inputs
        where = {**where, "representative": where["test"]}
    else:
        _numeric(representative, where["representative"], rep_field, allow_bool=False)
        if representative.ndim < 1 or representative.shape[0] == 0:
            raise ModelSourceError(f"{where['representative']}: the representative set is empty", rep_field)
        if representative.shape[1:] != inputs.shape[1:]:
            raise ModelSourceError(f"{where['representative']}: samples shaped {representative.shape[1:]}, but "
                                   f"the test inputs are {inputs.shape[1:]}", rep_field)
    return ProjectData(inputs=np.asarray(inputs, dtype=np.float32),
                       labels=None if labels is None else np.asarray(labels),
                       representative=np.asarray(representative, dtype=np.float32), where=dict(where))


def _integral(labels: np.ndarray) -> bool:
    return labels.dtype.kind in "iub" or bool(np.all(np.mod(labels, 1) == 0))


def _first_fraction(labels: np.ndarray) -> str:
    fractional = labels[np.mod(labels, 1) != 0]
    return f"{fractional[0]:g}" if fractional.size else "?"

