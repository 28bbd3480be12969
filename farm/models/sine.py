"""The sine recipe: TFLM's hello_world model, y = sin(x) for x in [0, 2*pi).

Dense 16 (relu) - Dense 16 (relu) - Dense 1 on one float input, trained on
generated noisy samples with fixed seeds; scored by mean absolute error against
the true sin(x) on a held-out split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.models.registry import TrainedModel, recipe

PARAMS: dict[str, Any] = {
    "seed": 1234,
    "train_samples": 2000,
    "test_samples": 64,
    "noise_std": 0.1,
    "hidden_units": 16,
    "epochs": 40,
    "batch_size": 32,
    "learning_rate": 0.01,
    "calibration_samples": 256,
    # Per-tensor int8 weights, like TFLM's hello_world_int8.tflite: for a model
    # this small, per-channel scales and zero points outweigh the int8 savings.
    "int8_per_channel": False,
}


def make_data(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train noisy, x_test, y_test = sin(x_test)), x of shape (N, 1)."""
    rng = np.random.default_rng(int(params["seed"]))
    n_train = int(params["train_samples"])
    n_test = int(params["test_samples"])
    x = rng.uniform(0.0, 2.0 * np.pi, size=(n_train + n_test, 1)).astype(np.float32)
    noise = rng.normal(0.0, float(params["noise_std"]), size=(n_train, 1)).astype(np.float32)
    x_train, x_test = x[:n_train], x[n_train:]
    y_train = (np.sin(x_train) + noise).astype(np.float32)
    y_test = np.sin(x_test).astype(np.float32)
    return x_train, y_train, x_test, y_test


def _mlp(keras: Any, units: int, batch_size: int | None) -> Any:
    return keras.Sequential([
        keras.Input(shape=(1,), batch_size=batch_size),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(1),
    ], name="sine")


@recipe("sine", metric="mae", params=PARAMS)
def sine(params: Mapping[str, Any]) -> TrainedModel:
    """TFLM hello_world: a 16-16-1 MLP approximating sin(x) on [0, 2*pi)."""
    import keras

    keras.utils.set_random_seed(int(params["seed"]))  # python, numpy and TF seeds
    x_train, y_train, x_test, y_test = make_data(params)
    units = int(params["hidden_units"])

    # Train with a free batch dimension, then copy the weights into a model with
    # a fixed batch of 1 (a free batch adds shape ops to the converted model).
    trainer = _mlp(keras, units, batch_size=None)
    trainer.compile(optimizer=keras.optimizers.Adam(float(params["learning_rate"])), loss="mse")
    trainer.fit(x_train, y_train, epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                shuffle=True, verbose=0)
    model = _mlp(keras, units, batch_size=1)
    model.set_weights(trainer.get_weights())

    return TrainedModel(
        keras_model=model,
        representative=x_train[: int(params["calibration_samples"])],
        test_inputs=x_test,
        ground_truth=y_test,
    )
