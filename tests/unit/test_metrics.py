"""farm.models.metrics: accuracy, top-k, mae, mse, roc-auc (MLPerf Tiny anomaly detection),
a user's module:function with its direction; the same function scores host and device."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from farm.models.metrics import (KNOWN, MetricError, higher_is_better, is_known, reconstruction_truth, resolve,
                                 score)


def test_mse_and_mae():
    truth = np.array([[0.0], [1.0], [-1.0]], dtype=np.float32)
    outputs = np.array([[0.5], [1.0], [0.0]])
    assert score("mae", outputs, truth) == pytest.approx(0.5)
    assert score("mse", outputs, truth) == pytest.approx((0.25 + 0 + 1) / 3)
    with pytest.raises(MetricError, match="mse: outputs shape"):
        score("mse", np.zeros((3, 2)), truth)


def test_top_k():
    scores = np.array([[0.1, 0.5, 0.4, 0.0],
                       [0.7, 0.1, 0.1, 0.1],
                       [0.2, 0.3, 0.1, 0.4]])
    labels = np.array([2, 3, 0])
    assert score("top-1", scores, labels) == pytest.approx(0.0)
    assert score("accuracy", scores, labels) == score("top-1", scores, labels)
    assert score("top-2", scores, labels) == pytest.approx(1 / 3)  # row 0: 2 is second
    assert score("top-3", scores, labels) == pytest.approx(2 / 3)  # row 2: 0 is third; row 1: 3 ties, lower classes first
    assert score("top-4", scores, labels) == pytest.approx(1.0)
    assert score("top-2", scores, np.eye(4)[labels]) == pytest.approx(1 / 3)  # one-hot labels
    with pytest.raises(MetricError, match="4 classes, fewer than k = 5"):
        score("top-5", scores, labels)


def test_roc_auc_of_scores_matches_scikit_learn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=200)
    anomaly = rng.normal(size=200) + labels * 0.8
    anomaly[:20] = 0.5  # ties count half
    expected = roc_auc_score(labels, anomaly)
    assert score("roc-auc", anomaly.reshape(-1, 1), labels) == pytest.approx(expected, abs=1e-12)
    two_class = np.stack([1 - anomaly, anomaly], axis=1)  # the second class score is "anomalous"
    assert score("roc-auc", two_class, labels) == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1.0


def test_roc_auc_of_an_autoencoder_is_its_reconstruction_error():
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(50, 16)).astype(np.float32)
    labels = np.array([0] * 40 + [1] * 10)
    noise = np.where(labels[:, None] == 1, 0.9, 0.1) * rng.normal(size=(50, 16))
    outputs = inputs + noise.astype(np.float32)  # anomalies reconstruct worse
    truth = reconstruction_truth(labels, inputs)
    assert truth.shape == (50, 17) and truth.dtype == np.float32
    errors = np.mean(np.square(outputs.astype(np.float64) - inputs), axis=1)
    assert score("roc-auc", outputs, truth) == pytest.approx(roc_auc_score(labels, errors), abs=1e-12)
    assert score("roc-auc", outputs, truth) > 0.9


def test_roc_auc_refuses_what_it_cannot_score():
    with pytest.raises(MetricError, match="needs normal and anomalous samples"):
        score("roc-auc", np.ones((4, 1)), np.zeros(4))
    with pytest.raises(MetricError, match="0 \\(normal\\) or 1"):
        score("roc-auc", np.ones((3, 1)), np.array([0, 1, 2]))
    with pytest.raises(MetricError, match="neither an anomaly score"):
        score("roc-auc", np.ones((3, 5)), np.array([0, 1, 1]))


def test_directions_and_names():
    assert [higher_is_better(m) for m in ("accuracy", "top-3", "roc-auc", "mae", "mse")] == [
        True, True, True, False, False]
    assert all(is_known(m) for m in ("accuracy", "top-5", "roc-auc", "mae", "mse", "pkg.mod:fn"))
    assert not any(is_known(m) for m in ("f1", "top-0", "top-k", "auc", "pkg.mod:"))
    with pytest.raises(MetricError, match=r"unknown metric 'f1' \(known: accuracy, top-<k>"):
        score("f1", np.zeros((2, 2)), np.zeros(2))
    assert "module:function" in KNOWN


@pytest.fixture()
def user_metrics(tmp_path, monkeypatch):
    (tmp_path / "team_metrics.py").write_text(textwrap.dedent("""
        import numpy as np

        def worst_error(outputs, truth):
            return float(np.max(np.abs(outputs - truth)))
        worst_error.higher_is_better = False

        def hits(outputs, truth):
            return float(np.mean(np.argmax(outputs, axis=1) == truth))
        hits.higher_is_better = True

        def undirected(outputs, truth):
            return 0.0

        def broken(outputs, truth):
            raise RuntimeError("no such column")
        broken.higher_is_better = True

        def text(outputs, truth):
            return "good"
        text.higher_is_better = True
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("team_metrics", None)


def test_a_user_metric_with_its_direction(user_metrics):
    truth = np.array([[0.0], [1.0]])
    assert score("team_metrics:worst_error", np.array([[0.25], [0.5]]), truth) == pytest.approx(0.5)
    assert higher_is_better("team_metrics:worst_error") is False
    assert score("team_metrics:hits", np.eye(2), np.array([0, 0])) == pytest.approx(0.5)
    assert resolve("team_metrics:hits").higher_is_better is True


def test_user_metric_errors_say_what_is_wrong(user_metrics):
    with pytest.raises(MetricError, match=r"set undirected.higher_is_better = True or False"):
        resolve("team_metrics:undirected")
    with pytest.raises(MetricError, match="has no function nope"):
        resolve("team_metrics:nope")
    with pytest.raises(MetricError, match="cannot import no_such_module_here"):
        resolve("no_such_module_here:f")
    with pytest.raises(MetricError, match="failed: RuntimeError: no such column"):
        score("team_metrics:broken", np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(MetricError, match="returned 'good', not a number"):
        score("team_metrics:text", np.ones((2, 1)), np.ones((2, 1)))
