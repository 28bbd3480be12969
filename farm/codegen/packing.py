"""Weight pre-arrangement for the optimized int8 kernels (``*_s8_fast``).

The host does once what the device would otherwise do per inference (the
"prepare" half of CMSIS-NN's kernels): it reorders the weights into the order
the inner loops read them and folds the input offset into the bias. Every
function here is the layout contract of a C file, documented next to it:

- `pack_rows` — farm/firmware/lib/kernels/include/mat_mult_s8.h (rows padded to 4-byte
  chunks, groups of 4 rows with their chunks interleaved, then 2, then 1);
- `pack_depthwise` — depthwise_conv2d_s8_fast.c (channel-major taps);
- `pack_depthwise_3x3` — depthwise_conv2d_s8_fast.c's word stream for 3x3 filters,
  depth multiplier 1, channels a multiple of 4 (`depthwise_3x3_stream` says when);
- `effective_bias` — tf_out_stage_s8 in tf_types.h.
"""

from __future__ import annotations

import numpy as np


def pack_rows(weights: np.ndarray, group: int, *, read_ahead: bool = False) -> np.ndarray:
    """[rows, depth] int8 -> the flat layout of mat_mult_s8.h, in groups of `group` rows.

    Each row is padded with zeros to a whole number of 4-byte chunks. Groups of `group`
    rows: for each chunk, the chunk of each row of the group. The rows left over
    (rows % group) go in halved groups (`group` // 2 rows, ...) down to single rows, the
    same way. With `read_ahead` (the two-column kernels, tf_mat_mult_s8_g2: two chunks
    per turn) and an odd number of chunks, 16 zero bytes follow, as its last turn reads
    one chunk past the rows. Group 4 is every kernel's layout (ROW_GROUP in
    farm.codegen.ops.optimized)."""
    w = np.asarray(weights, dtype=np.int8)
    if w.ndim != 2 or group < 1 or group & (group - 1):
        raise ValueError(f"pack_rows needs a 2-D matrix and a group that is a power of 2, got {w.shape} and {group}")
    rows, depth = w.shape
    chunks = -(-depth // 4)
    padded = np.zeros((rows, 4 * chunks), dtype=np.int8)
    padded[:, :depth] = w
    parts: list[np.ndarray] = [np.zeros(0, dtype=np.int8)]
    r, g = 0, group
    while g >= 1:
        for start in range(r, rows - g + 1, g):
            parts.append(padded[start:start + g].reshape(g, chunks, 4).transpose(1, 0, 2).reshape(-1))
            r = start + g
        g //= 2
    if read_ahead and chunks % 2:
        parts.append(np.zeros(16, dtype=np.int8))
    return np.concatenate(parts).astype(np.int8)


def pack_depthwise(weights: np.ndarray) -> np.ndarray:
    """[1, kh, kw, out_c] int8 -> [out_c][kh * kw], flat."""
    w = np.asarray(weights, dtype=np.int8)
    if w.ndim != 4 or w.shape[0] != 1:
        raise ValueError(f"a depthwise filter is [1, kh, kw, channels], got {list(w.shape)}")
    _, k_h, k_w, channels = w.shape
    return np.ascontiguousarray(w.reshape(k_h * k_w, channels).T).reshape(-1)


#: E, the common right shift of the fast requantization (TF_DW_SHIFT in depthwise_conv2d_s8_fast.c)
DW_SHIFT = 12
#: channels per group of the 3x3 stream, and its int16 order within a group (SXTB16, SXTB16 ROR #8)
_DW_ORDER = (0, 2, 1, 3)


def depthwise_3x3_stream(filter_dims: tuple[int, int, int, int], depth_multiplier: int) -> bool:
    """Whether depthwise_conv2d_s8_fast reads the filter as `pack_depthwise_3x3`'s stream
    (the same test as the kernel's)."""
    _, k_h, k_w, channels = filter_dims
    return (k_h, k_w) == (3, 3) and depth_multiplier == 1 and channels > 0 and channels % 4 == 0


def fast_depthwise_requant(weights: np.ndarray, bias_eff: np.ndarray, multipliers, shifts,
                           output_offset: int, act_min: int) -> list[tuple[int, int, int]] | None:
    """Per channel (k, C, M) of the kernel's mode 1, or None when the host cannot prove it exact.

    `weights` is [channels, taps] int8, `bias_eff` the effective bias. Mode 1 computes
    floor((acc' * M + C) / 2^(31 + E)) with acc' = 2^k * sum(w * x) (weights scaled by
    2^k = 2^(E - e) for the channel's right shift e), C = 2^k (bias * M + 2^30 + 2^(30+e))
    + output_offset * 2^(31 + E): tf_requantize_channel_s8 plus the output offset without its
    [acc < 0] correction, which cannot change the clamped output when act_min >= output_offset
    (for acc < 0 both forms give at most output_offset). Also proven here: the reference's int32
    accumulator never wraps (so the 64-bit form sees the same value), the scaled weights fit
    int16 and acc' int32, and the 64-bit sum cannot overflow."""
    if act_min < output_offset:
        return None
    w = np.asarray(weights, dtype=np.int64)
    rows = []
    for c in range(w.shape[0]):
        m, sh, bias = int(multipliers[c]), int(shifts[c]), int(bias_eff[c])
        abs_sum = int(np.abs(w[c]).sum())
        if abs(bias) + 128 * abs_sum > 2**31 - 1:
            return None  # the reference's accumulator could wrap
        if m == 0:
            rows.append((0, output_offset * 2**(31 + DW_SHIFT), 0))  # the output is the offset, clamped
            continue
        e = -sh
        k = DW_SHIFT - e
        if sh >= 0 or k < 0 or int(np.abs(w[c]).max(initial=0)) << k > 2**15 - 1:
            return None
        const = (bias * m + 2**30 + 2**(30 + e)) * 2**k + output_offset * 2**(31 + DW_SHIFT)
        if 128 * abs_sum * 2**k * m + abs(const) >= 2**63 or 128 * abs_sum * 2**k > 2**31 - 1:
            return None
        rows.append((k, const, m))
    return rows


def pack_depthwise_3x3(weights: np.ndarray, bias_eff: np.ndarray, multipliers, shifts, *, output_offset: int,
                       act_min: int) -> np.ndarray:
    """[1, 3, 3, channels] int8 -> the word stream of depthwise_conv2d_s8_fast.c, as bytes.

    Word 0: the mode, 1 when `fast_depthwise_requant` proves the fast requantization exact,
    else 0. Then per group of 4 channels c..c+3: per tap, (w[c], w[c+2]) and (w[c+1], w[c+3])
    as int16 pairs (scaled by 2^k in mode 1); in mode 1 then per channel C (low, high word), M."""
    w = np.asarray(weights, dtype=np.int8)
    if w.ndim != 4 or w.shape[:3] != (1, 3, 3) or w.shape[3] % 4 != 0 or w.shape[3] == 0:
        raise ValueError(f"the 3x3 stream needs a [1, 3, 3, 4n] filter, got {list(w.shape)}")
    channels = w.shape[3]
    taps = w.reshape(9, channels).T.astype(np.int64)  # [channels, taps]
    fast = fast_depthwise_requant(taps, bias_eff, multipliers, shifts, output_offset, act_min)
    scaled = taps if fast is None else taps * np.array([2**k for k, _, _ in fast], dtype=np.int64)[:, None]
    words: list[int] = [0 if fast is None else 1]
    for g in range(0, channels, 4):
        block = scaled[g:g + 4][list(_DW_ORDER)]  # rows c, c+2, c+1, c+3
        for t in range(9):
            halves = [int(v) & 0xFFFF for v in block[:, t]]
            words += [halves[0] | halves[1] << 16, halves[2] | halves[3] << 16]
        if fast is not None:
            for _, const, m in fast[g:g + 4]:
                words += [const & 0xFFFFFFFF, (const >> 32) & 0xFFFFFFFF, m & 0xFFFFFFFF]
    return np.array(words, dtype="<u4").view(np.int8)


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
