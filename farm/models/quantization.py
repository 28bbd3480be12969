"""Affine int8 (de)quantization on the host, with TFLite's rounding.

`quantize` mirrors TFLite's AffineQuantize: q = round(x / scale) + zero_point in
float32, rounding half away from zero, clamped to the int8 range.
`dequantize` mirrors DEQUANTIZE: x = scale * (q - zero_point).
"""

from __future__ import annotations

import numpy as np

INT8_MIN = -128
INT8_MAX = 127


def round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round: halves round away from zero (numpy's round goes to even)."""
    x = np.asarray(x)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if scale <= 0:
        raise ValueError(f"quantization scale must be positive, got {scale}")
    ratio = np.asarray(x, dtype=np.float32) / np.float32(scale)  # float32 division, as on device
    q = round_half_away(ratio.astype(np.float64)) + zero_point
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.float32(scale) * (np.asarray(q, dtype=np.int32) - zero_point).astype(np.float32)).astype(np.float32)
