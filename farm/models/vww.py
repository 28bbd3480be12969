"""The vww recipe: MLPerf Tiny visual wake words, MobileNetV1 0.25 at its real input size.

Input 96 x 96 x 3, 2 classes (person / no person). The MLPerf Tiny reference
architecture: MobileNetV1 with width multiplier 0.25 — conv 3x3 / stride 2 x 8,
then 13 depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise + BN +
ReLU) of 16, 32, 32, 64, 64, 128 x 6, 256, 256 filters with stride 2 where the
width grows (except the first), average pooling 3x3, dense 2, softmax.

The Visual Wake Words data set cannot be downloaded here, so the model trains
briefly on generated images with random labels: latency-only (accuracy is not
meaningful).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.models.registry import TrainedModel, recipe

#: (pointwise filters, depthwise stride) of the 13 blocks of MobileNetV1 at alpha 0.25
BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (128, 1),
          (128, 1), (256, 2), (256, 1))

#: up to ~1.5e9 instructions per inference on an FPU-less core (soft-float, int8 weights): one
#: warm-up and two timed windows of 3 inferences (exact counts) instead of 5 x 8
MEASURE = {"warmup": 1, "windows": 2, "inferences_per_window": 3, "inference_timeout": 900.0,
           "request_timeout": 60.0}

PARAMS: dict[str, Any] = {
    "seed": 1004,
    "input_shape": (96, 96, 3),
    "classes": 2,
    "first_filters": 8,
    "blocks": BLOCKS,
    "train_samples": 64,
    "test_samples": 3,
    "calibration_samples": 24,
    "epochs": 1,
    "batch_size": 16,
    "learning_rate": 0.001,
}


def _mobilenet_v1(keras: Any, params: Mapping[str, Any], batch_size: int | None) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=tuple(params["input_shape"]), batch_size=batch_size)
    x = layers.Conv2D(int(params["first_filters"]), 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for filters, stride in params["blocks"]:
        x = layers.DepthwiseConv2D(3, strides=int(stride), padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(int(filters), 1, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.AveragePooling2D(pool_size=int(x.shape[1]))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(int(params["classes"]))(x)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs, name="vww_mobilenet_v1_025")


@recipe("vww", metric="accuracy", params=PARAMS, latency_only=True,
        measure=MEASURE)
def vww(params: Mapping[str, Any]) -> TrainedModel:
    """MLPerf Tiny VWW MobileNetV1 0.25, 96x96x3 input (generated data: latency only)."""
    from farm.models.training import fit_fixed_batch, generated_split

    x_train, y_train, x_test, y_test = generated_split(
        int(params["seed"]), tuple(params["input_shape"]), train=int(params["train_samples"]),
        test=int(params["test_samples"]), classes=int(params["classes"]), kind="uniform")
    model = fit_fixed_batch(lambda keras, batch: _mobilenet_v1(keras, params, batch), x_train, y_train,
                            seed=int(params["seed"]), loss="sparse_categorical_crossentropy",
                            epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                            learning_rate=float(params["learning_rate"]))
    return TrainedModel(keras_model=model, representative=x_train[: int(params["calibration_samples"])],
                        test_inputs=x_test, ground_truth=y_test.astype(np.float32))
