"""The ad recipe: MLPerf Tiny anomaly detection, the FC autoencoder at its real input size.

Input 640 (5 frames x 128 log-mel bins), reconstructed at the output. The
MLPerf Tiny reference architecture: dense 128 + BN + ReLU x 4, a dense 8 + BN +
ReLU bottleneck, dense 128 + BN + ReLU x 4, dense 640. Scored by the mean
absolute reconstruction error (lower is better).

ToyADMOS / MIMII cannot be downloaded here, so the model trains briefly on
generated features: latency-only (the error is not meaningful).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.models.registry import TrainedModel, recipe

#: ~5e7 instructions per inference on an FPU-less core: one warm-up, three windows of 4
MEASURE = {"warmup": 1, "windows": 3, "inferences_per_window": 4, "inference_timeout": 120.0}

PARAMS: dict[str, Any] = {
    "seed": 1002,
    "inputs": 640,
    "hidden": 128,
    "bottleneck": 8,
    "layers": 4,
    "train_samples": 256,
    "test_samples": 8,
    "calibration_samples": 64,
    "epochs": 3,
    "batch_size": 32,
    "learning_rate": 0.001,
}


def _autoencoder(keras: Any, params: Mapping[str, Any], batch_size: int | None) -> Any:
    layers = keras.layers
    x = inputs = keras.Input(shape=(int(params["inputs"]),), batch_size=batch_size)
    widths = [int(params["hidden"])] * int(params["layers"]) + [int(params["bottleneck"])] \
        + [int(params["hidden"])] * int(params["layers"])
    for width in widths:
        x = layers.Dense(width)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    outputs = layers.Dense(int(params["inputs"]))(x)
    return keras.Model(inputs, outputs, name="ad_fc_autoencoder")


@recipe("ad", metric="mae", params=PARAMS, latency_only=True,
        measure=MEASURE)
def ad(params: Mapping[str, Any]) -> TrainedModel:
    """MLPerf Tiny AD FC autoencoder, 640 inputs (generated data: latency only)."""
    from farm.models.training import fit_fixed_batch, generated_split

    x_train, _, x_test, _ = generated_split(int(params["seed"]), (int(params["inputs"]),),
                                            train=int(params["train_samples"]), test=int(params["test_samples"]),
                                            classes=None, kind="normal")
    model = fit_fixed_batch(lambda keras, batch: _autoencoder(keras, params, batch), x_train, x_train,
                            seed=int(params["seed"]), loss="mse", epochs=int(params["epochs"]),
                            batch_size=int(params["batch_size"]), learning_rate=float(params["learning_rate"]))
    return TrainedModel(keras_model=model, representative=x_train[: int(params["calibration_samples"])],
                        test_inputs=x_test, ground_truth=x_test)
