"""The kws recipe: MLPerf Tiny keyword spotting, DS-CNN (small) at its real input size.

Input 49 x 10 x 1 (49 frames of 10 MFCC features), 12 classes. The MLPerf Tiny
reference architecture: conv 10x4 / stride 2 x 64 + BN + ReLU, four
depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise 64 + BN +
ReLU), average pooling over the 25 x 5 map, dense 12, softmax.

Speech Commands cannot be downloaded here, so the model trains briefly on
generated features with random labels: latency-only (accuracy is not meaningful).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.models.registry import TrainedModel, recipe

#: ~3e8 instructions per inference on an FPU-less core: one warm-up, three windows of 3
MEASURE = {"warmup": 1, "windows": 3, "inferences_per_window": 3, "inference_timeout": 300.0}

PARAMS: dict[str, Any] = {
    "seed": 1001,
    "input_shape": (49, 10, 1),
    "classes": 12,
    "filters": 64,
    "blocks": 4,
    "train_samples": 128,
    "test_samples": 4,
    "calibration_samples": 32,
    "epochs": 2,
    "batch_size": 32,
    "learning_rate": 0.001,
}


def _ds_cnn(keras: Any, params: Mapping[str, Any], batch_size: int | None) -> Any:
    layers = keras.layers
    filters = int(params["filters"])
    x = inputs = keras.Input(shape=tuple(params["input_shape"]), batch_size=batch_size)
    x = layers.Conv2D(filters, (10, 4), strides=(2, 2), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(int(params["blocks"])):
        x = layers.DepthwiseConv2D((3, 3), padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(filters, (1, 1), padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Dropout(0.4)(x)
    x = layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(int(params["classes"]))(x)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs, name="kws_ds_cnn")


@recipe("kws", metric="accuracy", params=PARAMS, latency_only=True,
        measure=MEASURE)
def kws(params: Mapping[str, Any]) -> TrainedModel:
    """MLPerf Tiny KWS DS-CNN, 49x10x1 input (generated data: latency only)."""
    from farm.models.training import fit_fixed_batch, generated_split

    x_train, y_train, x_test, y_test = generated_split(
        int(params["seed"]), tuple(params["input_shape"]), train=int(params["train_samples"]),
        test=int(params["test_samples"]), classes=int(params["classes"]), kind="normal")
    model = fit_fixed_batch(lambda keras, batch: _ds_cnn(keras, params, batch), x_train, y_train,
                            seed=int(params["seed"]), loss="sparse_categorical_crossentropy",
                            epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                            learning_rate=float(params["learning_rate"]))
    return TrainedModel(keras_model=model, representative=x_train[: int(params["calibration_samples"])],
                        test_inputs=x_test, ground_truth=y_test.astype(np.float32))
