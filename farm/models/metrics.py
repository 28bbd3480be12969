"""Model quality metrics, computed the same way for host references and devices."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class MetricError(ValueError):
    pass


def _mae(outputs: np.ndarray, truth: np.ndarray) -> float:
    if outputs.shape != truth.shape:
        raise MetricError(f"mae: outputs shape {outputs.shape} != ground truth shape {truth.shape}")
    return float(np.mean(np.abs(outputs.astype(np.float64) - truth.astype(np.float64))))


def _accuracy(outputs: np.ndarray, truth: np.ndarray) -> float:
    if outputs.ndim < 2:
        raise MetricError(f"accuracy: outputs must be N x classes, got shape {outputs.shape}")
    scores = outputs.reshape(outputs.shape[0], -1)
    predicted = np.argmax(scores, axis=1)
    if truth.ndim >= 2 and truth.reshape(truth.shape[0], -1).shape[1] == scores.shape[1] > 1:
        labels = np.argmax(truth.reshape(truth.shape[0], -1), axis=1)  # one-hot
    else:
        labels = truth.reshape(truth.shape[0]).astype(np.int64)
    if labels.shape[0] != predicted.shape[0]:
        raise MetricError(f"accuracy: {predicted.shape[0]} outputs for {labels.shape[0]} labels")
    return float(np.mean(predicted == labels))


#: metric name -> (function, higher_is_better)
METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    "mae": (_mae, False),
    "accuracy": (_accuracy, True),
}


def score(metric: str, outputs_float: np.ndarray, ground_truth: np.ndarray) -> float:
    """Score float outputs (N x ...) against the ground truth with `metric`.

    "mae": mean absolute error, lower is better. "accuracy": fraction of argmax
    predictions equal to the labels (N labels or N x C one-hot), higher is better.
    """
    try:
        fn, _ = METRICS[metric]
    except KeyError:
        raise MetricError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})") from None
    outputs = np.asarray(outputs_float)
    truth = np.asarray(ground_truth)
    if outputs.shape[0] == 0:
        raise MetricError(f"{metric}: no outputs to score")
    return fn(outputs, truth)


def higher_is_better(metric: str) -> bool:
    try:
        return METRICS[metric][1]
    except KeyError:
        raise MetricError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})") from None
