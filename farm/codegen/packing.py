"""Weight pre-arrangement for the optimized int8 kernels (``*_s8_fast``).

The host does once what the device would otherwise do per inference (the
"prepare" half of CMSIS-NN's kernels): it reorders the weights into the order
the inner loops read them and folds the input offset into the bias. Every
function here is the layout contract of a C file, documented next to it:

- `pack_rows` — farm/firmware/lib/kernels/include/mat_mult_s8.h (groups of G rows,
  4-byte chunks interleaved);
- `pack_depthwise` — depthwise_conv2d_s8_fast.c (channel-major taps);
- `effective_bias` — tf_out_stage_s8 in tf_types.h.
"""

from __future__ import annotations

import numpy as np


def pack_rows(weights: np.ndarray, group: int) -> np.ndarray:
    """[rows, depth] int8 -> the flat layout of mat_mult_s8.h for groups of `group` rows."""
    w = np.asarray(weights, dtype=np.int8)
    if w.ndim != 2 or group < 1:
        raise ValueError(f"pack_rows needs a 2-D matrix and a positive group, got {w.shape} and {group}")
    rows, depth = w.shape
    d4 = depth - depth % 4
    full = rows - rows % group
    parts: list[np.ndarray] = []
    for g in range(0, full, group):
        block = w[g:g + group]
        parts.append(block[:, :d4].reshape(group, d4 // 4, 4).transpose(1, 0, 2).reshape(-1))
        parts.append(block[:, d4:].reshape(-1))
    parts.append(w[full:].reshape(-1))
    return np.concatenate(parts).astype(np.int8)


def pack_depthwise(weights: np.ndarray) -> np.ndarray:
    """[1, kh, kw, out_c] int8 -> [out_c][kh * kw], flat."""
    w = np.asarray(weights, dtype=np.int8)
    if w.ndim != 4 or w.shape[0] != 1:
        raise ValueError(f"a depthwise filter is [1, kh, kw, channels], got {list(w.shape)}")
    _, k_h, k_w, channels = w.shape
    return np.ascontiguousarray(w.reshape(k_h * k_w, channels).T).reshape(-1)


def wrap_int32(values: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 (what the device's int32 adds do)."""
    v = np.asarray(values, dtype=np.int64)
    return (((v + 2**31) % 2**32) - 2**31).astype(np.int32)


def effective_bias(bias: np.ndarray | None, weights_by_channel: np.ndarray, input_offset: int) -> np.ndarray:
    """bias[oc] + input_offset * sum(weights of oc), int32 (wrapping like the device).

    `weights_by_channel` is [channels, taps]: every weight output channel `oc` multiplies.
    Since sum w * (x + offset) = sum w * x + offset * sum w exactly in wrapping int32
    arithmetic, kernels that start from this bias and add raw products match the
    reference kernels bit for bit."""
    w = np.asarray(weights_by_channel, dtype=np.int64)
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
    return wrap_int32(b + int(input_offset) * w.sum(axis=1))
