"""Training helpers shared by the recipes (TensorFlow imported inside only).

Keras models are trained with a free batch dimension and then copied into the
same architecture built with a fixed batch of 1: a free batch adds shape ops
(SHAPE / STRIDED_SLICE / PACK) to the converted model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: builder(keras, batch_size) -> keras.Model
Builder = Callable[[Any, "int | None"], Any]


def fit_fixed_batch(build: Builder, x: np.ndarray, y: np.ndarray, *, seed: int, loss: str, epochs: int,
                    batch_size: int, learning_rate: float, metrics: tuple[str, ...] = ()) -> Any:
    """Train build(keras, None) on (x, y) with fixed seeds; return build(keras, 1) with its weights."""
    import keras

    keras.utils.set_random_seed(int(seed))  # python, numpy and TF seeds
    trainer = build(keras, None)
    trainer.compile(optimizer=keras.optimizers.Adam(float(learning_rate)), loss=loss, metrics=list(metrics))
    trainer.fit(x, y, epochs=int(epochs), batch_size=int(batch_size), shuffle=True, verbose=0)
    model = build(keras, 1)
    model.set_weights(trainer.get_weights())
    return model


def generated_split(seed: int, shape: tuple[int, ...], *, train: int, test: int, classes: int | None,
                    kind: str = "uniform") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generated inputs (and random labels) for a latency-only model: (x_train, y_train, x_test, y_test).

    kind "uniform": values in [0, 1) (image-like); "normal": standard normal
    (feature-like). Labels are uniform over `classes` (None: no labels, y = x).
    """
    rng = np.random.default_rng(int(seed))
    n = train + test
    if kind == "uniform":
        x = rng.uniform(0.0, 1.0, size=(n, *shape)).astype(np.float32)
    elif kind == "normal":
        x = rng.normal(0.0, 1.0, size=(n, *shape)).astype(np.float32)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    y = x if classes is None else rng.integers(0, classes, size=n).astype(np.int64)
    return x[:train], y[:train], x[train:], y[train:]
