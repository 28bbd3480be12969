"""The digits recipe: a small CNN on scikit-learn's bundled 8x8 handwritten digits.

1797 images of 8x8 pixels (values 0..16, scaled to [0, 1]), 10 classes; a
stratified 80/20 split with a fixed seed; scored by accuracy on the held-out
20% (real data, real accuracy).

Conv 3x3x8 (same, relu) - max pool 2 - conv 3x3x16 (same, relu) - max pool 2 -
flatten - dense 10 - softmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.models.registry import TrainedModel, recipe

PARAMS: dict[str, Any] = {
    "seed": 4321,
    "test_fraction": 0.2,
    "filters": (8, 16),
    "epochs": 20,
    "batch_size": 32,
    "learning_rate": 0.01,
    "calibration_samples": 200,
}


def load_split(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test), x of shape (N, 8, 8, 1) in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / np.float32(16.0))[..., np.newaxis]
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=float(params["test_fraction"]), random_state=int(params["seed"]), stratify=y)
    return x_train, y_train, x_test, y_test


def _cnn(keras: Any, filters: tuple[int, int], batch_size: int | None) -> Any:
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1), batch_size=batch_size),
        keras.layers.Conv2D(filters[0], 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(filters[1], 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
        keras.layers.Softmax(),
    ], name="digits")


@recipe("digits", metric="accuracy", params=PARAMS)
def digits(params: Mapping[str, Any]) -> TrainedModel:
    """Small CNN on scikit-learn's 8x8 digits (real data, real accuracy)."""
    from farm.models.training import fit_fixed_batch

    x_train, y_train, x_test, y_test = load_split(params)
    filters = tuple(int(f) for f in params["filters"])
    model = fit_fixed_batch(lambda keras, batch: _cnn(keras, filters, batch), x_train, y_train,
                            seed=int(params["seed"]), loss="sparse_categorical_crossentropy",
                            epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                            learning_rate=float(params["learning_rate"]))
    return TrainedModel(
        keras_model=model,
        representative=x_train[: int(params["calibration_samples"])],
        test_inputs=x_test,
        ground_truth=y_test.astype(np.float32),
    )
