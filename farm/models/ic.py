"""The ic recipe: MLPerf Tiny image classification, ResNet-8 at its real input size.

Input 32 x 32 x 3, 10 classes. The MLPerf Tiny reference architecture: conv 3x3
x 16 + BN + ReLU, then three residual stacks of 16, 32 and 64 filters (two conv
3x3 + BN each, the first with stride 2 in stacks 2 and 3 where a 1x1 / stride 2
conv projects the shortcut; ADD, ReLU), average pooling 8x8, dense 10, softmax.

CIFAR-10 cannot be downloaded here, so the model trains briefly on generated
images with random labels: latency-only (accuracy is not meaningful).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.models.registry import TrainedModel, recipe

#: up to ~2e9 instructions per inference on an FPU-less core (soft-float, int8 weights): one
#: warm-up and two timed windows of 3 inferences (3 x 1.6 SysTick ticks per instruction > 4,
#: so the counts are exact integers) instead of 5 x 8
MEASURE = {"warmup": 1, "windows": 2, "inferences_per_window": 3, "inference_timeout": 900.0,
           "request_timeout": 60.0}

PARAMS: dict[str, Any] = {
    "seed": 1003,
    "input_shape": (32, 32, 3),
    "classes": 10,
    "filters": (16, 32, 64),
    "train_samples": 128,
    "test_samples": 3,
    "calibration_samples": 32,
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 0.001,
}


def _resnet8(keras: Any, params: Mapping[str, Any], batch_size: int | None) -> Any:
    layers = keras.layers

    def conv_bn(x: Any, filters: int, kernel: int, strides: int, relu: bool) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if relu else x

    filters = [int(f) for f in params["filters"]]
    inputs = keras.Input(shape=tuple(params["input_shape"]), batch_size=batch_size)
    x = conv_bn(inputs, filters[0], 3, 1, relu=True)
    for stack, width in enumerate(filters):
        strides = 1 if stack == 0 else 2
        y = conv_bn(x, width, 3, strides, relu=True)
        y = conv_bn(y, width, 3, 1, relu=False)
        if strides != 1:
            x = layers.Conv2D(width, 1, strides=strides, padding="same", kernel_initializer="he_normal")(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.AveragePooling2D(pool_size=int(x.shape[1]))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(int(params["classes"]), kernel_initializer="he_normal")(x)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs, name="ic_resnet8")


@recipe("ic", metric="accuracy", params=PARAMS, latency_only=True,
        measure=MEASURE)
def ic(params: Mapping[str, Any]) -> TrainedModel:
    """MLPerf Tiny IC ResNet-8, 32x32x3 input (generated data: latency only)."""
    from farm.models.training import fit_fixed_batch, generated_split

    x_train, y_train, x_test, y_test = generated_split(
        int(params["seed"]), tuple(params["input_shape"]), train=int(params["train_samples"]),
        test=int(params["test_samples"]), classes=int(params["classes"]), kind="uniform")
    model = fit_fixed_batch(lambda keras, batch: _resnet8(keras, params, batch), x_train, y_train,
                            seed=int(params["seed"]), loss="sparse_categorical_crossentropy",
                            epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                            learning_rate=float(params["learning_rate"]))
    return TrainedModel(keras_model=model, representative=x_train[: int(params["calibration_samples"])],
                        test_inputs=x_test, ground_truth=y_test.astype(np.float32))
