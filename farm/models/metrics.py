"""Model quality metrics, computed the same way for host references and devices.

A metric is named by a string, the one a model declares (and a result stores):

    accuracy        fraction of argmax predictions equal to the labels   higher is better
    top-<k>         fraction of samples whose label is among the k top scores (``top-3``)   higher
    mae / mse       mean absolute / squared error against the targets    lower is better
    roc-auc         area under the ROC curve of an anomaly score (MLPerf Tiny anomaly detection)   higher
    module:function a user's function ``f(outputs, ground_truth) -> float``; its direction is the
                    function's ``higher_is_better`` attribute (True or False, required)

Labels are N class indices or N x C one-hot rows. For ``roc-auc`` the labels are 0 (normal) or
1 (anomalous) and the anomaly score is the model's output (one score per sample, or the second
of two class scores); for an autoencoder (outputs shaped like its inputs) the score of a sample
is its reconstruction error, the mean squared difference of output and input, so its ground
truth carries the inputs too: `reconstruction_truth` (the label column, then the float inputs),
which is what the device's outputs are scored against as well.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], float]


class MetricError(ValueError):
    pass


def _mae(outputs: np.ndarray, truth: np.ndarray) -> float:
    if outputs.shape != truth.shape:
        raise MetricError(f"mae: outputs shape {outputs.shape} != ground truth shape {truth.shape}")
    return float(np.mean(np.abs(outputs.astype(np.float64) - truth.astype(np.float64))))


def _mse(outputs: np.ndarray, truth: np.ndarray) -> float:
    if outputs.shape != truth.shape:
        raise MetricError(f"mse: outputs shape {outputs.shape} != ground truth shape {truth.shape}")
    return float(np.mean(np.square(outputs.astype(np.float64) - truth.astype(np.float64))))


def _class_scores_and_labels(name: str, outputs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if outputs.ndim < 2:
        raise MetricError(f"{name}: outputs must be N x classes, got shape {outputs.shape}")
    scores = outputs.reshape(outputs.shape[0], -1)
    if truth.ndim >= 2 and truth.reshape(truth.shape[0], -1).shape[1] == scores.shape[1] > 1:
        labels = np.argmax(truth.reshape(truth.shape[0], -1), axis=1)  # one-hot
    else:
        if truth.size != truth.shape[0]:
            raise MetricError(f"{name}: labels must be N class indices or N x {scores.shape[1]} one-hot, "
                              f"got shape {truth.shape}")
        labels = truth.reshape(truth.shape[0]).astype(np.int64)
    if labels.shape[0] != scores.shape[0]:
        raise MetricError(f"{name}: {scores.shape[0]} outputs for {labels.shape[0]} labels")
    return scores, labels


def _accuracy(outputs: np.ndarray, truth: np.ndarray) -> float:
    scores, labels = _class_scores_and_labels("accuracy", outputs, truth)
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def _top_k(k: int) -> MetricFn:
    def top_k(outputs: np.ndarray, truth: np.ndarray) -> float:
        scores, labels = _class_scores_and_labels(f"top-{k}", outputs, truth)
        if k > scores.shape[1]:
            raise MetricError(f"top-{k}: the model has {scores.shape[1]} classes, fewer than k = {k}")
        # the k best scores of each row; a stable sort keeps the lower class first on ties, like argmax
        best = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :k]
        return float(np.mean(np.any(best == labels[:, np.newaxis], axis=1)))

    return top_k


def reconstruction_truth(labels: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """The ground truth of ``roc-auc`` for an autoencoder: per sample its 0/1 label, then its
    float inputs flattened (N x (1 + input size))."""
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    flat = np.asarray(inputs, dtype=np.float32).reshape(labels.shape[0], -1)
    return np.concatenate([labels, flat], axis=1)


def _roc_auc(outputs: np.ndarray, truth: np.ndarray) -> float:
    n = outputs.shape[0]
    out = outputs.reshape(n, -1).astype(np.float64)
    gt = truth.reshape(truth.shape[0], -1).astype(np.float64)
    if gt.shape[0] != n:
        raise MetricError(f"roc-auc: {n} outputs for {gt.shape[0]} labels")
    if gt.shape[1] == 1:
        if out.shape[1] == 1:
            anomaly = out[:, 0]
        elif out.shape[1] == 2:
            anomaly = out[:, 1]  # the score of class 1, "anomalous"
        else:
            raise MetricError(f"roc-auc: outputs of {out.shape[1]} values per sample are neither an anomaly "
                              "score nor two class scores (an autoencoder's ground truth carries its inputs: "
                              "farm.models.metrics.reconstruction_truth)")
    elif gt.shape[1] == out.shape[1] + 1:
        anomaly = np.mean(np.square(out - gt[:, 1:]), axis=1)  # reconstruction error
    else:
        raise MetricError(f"roc-auc: ground truth of {gt.shape[1]} values per sample fits neither a score "
                          f"nor a reconstruction of {out.shape[1]} outputs")
    labels = gt[:, 0]
    if not np.all(np.isin(labels, (0.0, 1.0))):
        raise MetricError("roc-auc: labels must be 0 (normal) or 1 (anomalous)")
    positives, negatives = int(np.sum(labels == 1.0)), int(np.sum(labels == 0.0))
    if positives == 0 or negatives == 0:
        raise MetricError(f"roc-auc needs normal and anomalous samples; got {negatives} normal, "
                          f"{positives} anomalous")
    # Mann-Whitney U: the probability that an anomalous sample scores above a normal one (ties count half)
    order = np.argsort(anomaly, kind="mergesort")
    ranks = np.empty(n, dtype=np.float64)
    sorted_scores = anomaly[order]
    start = 0
    while start < n:
        end = start
        while end + 1 < n and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0  # the average rank of a tie
        start = end + 1
    u = float(np.sum(ranks[labels == 1.0])) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


#: the fixed metric names -> (function, higher_is_better); top-<k> and module:function are resolved by name
METRICS: dict[str, tuple[MetricFn, bool]] = {
    "mae": (_mae, False),
    "mse": (_mse, False),
    "accuracy": (_accuracy, True),
    "roc-auc": (_roc_auc, True),
}

KNOWN = "accuracy, top-<k> (e.g. top-3), mae, mse, roc-auc or a module:function of your own"

_TOP_K = re.compile(r"top-([1-9][0-9]*)")
_USER = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    higher_is_better: bool


def resolve(metric: str) -> Metric:
    """The metric named `metric` (module doc); MetricError naming what is known otherwise.
    A ``module:function`` is imported (from ``sys.path``: a project's folder is put there
    when its models are registered)."""
    if metric in METRICS:
        fn, higher = METRICS[metric]
        return Metric(metric, fn, higher)
    top = _TOP_K.fullmatch(metric)
    if top:
        return Metric(metric, _top_k(int(top.group(1))), True)
    user = _USER.fullmatch(metric)
    if user:
        return _user_metric(metric, user.group(1), user.group(2))
    raise MetricError(f"unknown metric {metric!r} (known: {KNOWN})")


def _user_metric(metric: str, module_name: str, function: str) -> Metric:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001  (the user's module: any failure is theirs, said in one sentence)
        raise MetricError(f"metric {metric!r}: cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, function, None)
    if not callable(fn):
        raise MetricError(f"metric {metric!r}: {module_name} has no function {function}")
    higher = getattr(fn, "higher_is_better", None)
    if not isinstance(higher, bool):
        raise MetricError(f"metric {metric!r}: say which way is better: set {function}.higher_is_better = "
                          "True or False in " + module_name)

    def call(outputs: np.ndarray, truth: np.ndarray) -> float:
        try:
            value = fn(outputs, truth)
        except Exception as exc:  # noqa: BLE001
            raise MetricError(f"metric {metric!r} failed: {type(exc).__name__}: {exc}") from None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MetricError(f"metric {metric!r} returned {value!r}, not a number") from None
        if not math.isfinite(number):
            raise MetricError(f"metric {metric!r} returned {number}")
        return number

    return Metric(metric, call, higher)


def is_known(metric: str) -> bool:
    """Whether `metric` is a name this module scores (a ``module:function`` only by its form)."""
    return metric in METRICS or bool(_TOP_K.fullmatch(metric) or _USER.fullmatch(metric))


def score(metric: str, outputs_float: np.ndarray, ground_truth: np.ndarray) -> float:
    """Score float outputs (N x ...) against the ground truth with `metric` (module doc)."""
    fn = resolve(metric).fn
    outputs = np.asarray(outputs_float)
    truth = np.asarray(ground_truth)
    if outputs.shape[0] == 0:
        raise MetricError(f"{metric}: no outputs to score")
    return fn(outputs, truth)


def higher_is_better(metric: str) -> bool:
    """The direction of `metric`: True for accuracy, top-k, roc-auc; False for the errors;
    a user function's ``higher_is_better``."""
    return resolve(metric).higher_is_better
