"""The optimized int8 kernels' steps (``*_s8_fast``): which CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED ops take them, and what they emit.

An op takes an optimized kernel when the lowering runs with optimized kernels
(the default; ``kernels="reference"`` keeps the plain reference kernels, the
truth the optimized ones are tested against) and its shape is one the kernel
handles; otherwise it keeps its reference kernel. The step emits its weights
already pre-arranged (farm.codegen.packing) and an effective bias with the input
offset folded in; the original weight and bias tensors are then not emitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import CONST_DATA, c_int
from farm.codegen.inplace import pointwise_in_place
from farm.codegen.ir import Step, StepEmitter
from farm.codegen.ops.common import Window, int8_conv_params
from farm.codegen.packing import (depthwise_3x3_stream, effective_bias, pack_depthwise, pack_depthwise_3x3,
                                  pack_rows)
from farm.codegen.tflite_reader import Tensor

#: kernels that take the shared scratch buffer as their last argument
SCRATCH_KERNELS = ("conv2d_s8_fast", "conv2d_1x1_s8_fast", "depthwise_conv2d_s8_fast")

#: rows per group of the packed weights, per kernel (mat_mult_s8.h: one layout for all)
ROW_GROUP = {"conv2d_s8_fast": 4, "conv2d_1x1_s8_fast": 4, "fully_connected_s8_fast": 4}


@dataclass(frozen=True, kw_only=True)
class FastS8(Step):
    """A call of an optimized int8 kernel on pre-arranged weights."""

    input: int
    output: int
    weights_index: int  # the original weight tensor (for the comment)
    packed: tuple[int, ...]  # pre-arranged weights
    bias_eff: tuple[int, ...]
    multipliers: tuple[int, ...]  # one per output channel
    shifts: tuple[int, ...]
    output_offset: int
    act_min: int
    act_max: int
    input_dims: tuple[int, int, int, int]
    filter_dims: tuple[int, int, int, int]
    output_dims: tuple[int, int, int, int]
    description: str
    input_offset: int = 0
    window: Window | None = None
    depth_multiplier: int = 1

    @property
    def own_const_bytes(self) -> int:
        return len(self.packed) + 4 * len(self.bias_eff)

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        channels = channel_table(self.bias_eff, self.multipliers, self.shifts, self.output_offset)
        lines = [
            e.int_array(f"{p}_packed", "int8_t", self.packed),
            f"static const {CONST_DATA} tf_channel_s8 {p}_channels[{len(channels)}] = {{  "
            "/* bias, multiplier, shift, rounding (lo, hi): tf_types.h */\n"
            + "\n".join(f"    {{{b}, {m}, {sh}, {lo}u, {hi}}}," for b, m, sh, lo, hi in channels) + "\n};",
            e.struct("tf_out_stage_s8", f"{p}_stage", [
                ("channels", f"{p}_channels"), ("output_offset", c_int(self.output_offset)),
                ("activation_min", c_int(self.act_min)), ("activation_max", c_int(self.act_max))]),
        ]
        args = []
        if self.kernel in ("conv2d_s8_fast", "depthwise_conv2d_s8_fast"):
            assert self.window is not None
            lines.append(int8_conv_params(e, f"{p}_params", depthwise=self.kernel.startswith("depthwise"),
                                          window=self.window, depth_multiplier=self.depth_multiplier,
                                          input_offset=self.input_offset, output_offset=self.output_offset,
                                          act_min=self.act_min, act_max=self.act_max))
            args.append(f"&{p}_params")
        lines += [e.dims(f"{p}_input_dims", self.input_dims), e.dims(f"{p}_filter_dims", self.filter_dims),
                  e.dims(f"{p}_output_dims", self.output_dims)]
        e.declare(self, *lines, extra=f" ({self.description}; weights #{self.weights_index} pre-arranged, "
                                      "input offset folded into the bias)")
        args += [f"&{p}_stage", f"&{p}_input_dims", e.pointer(self.input, writable=False),
                 f"&{p}_filter_dims", f"{p}_packed", f"&{p}_output_dims", e.pointer(self.output, writable=True)]
        if self.kernel in SCRATCH_KERNELS:
            args.append(e.scratch())
        e.call(self.kernel, args)


def scratch_bytes(kernel: str, depth: int) -> int:
    """Scratch a convolution kernel needs (kernels.h): the im2col columns of two pixels
    (conv2d_s8_fast), then the int16 copy of two columns the DSP path multiplies
    (TF_MAT_MULT_EXT_WORDS words, in mat_mult_s8.h: 4 per chunk of 4 bytes of depth,
    an even number of chunks)."""
    ext = 4 * 8 * -(-depth // 8)
    if kernel == "conv2d_1x1_s8_fast":
        return max(ext, 4)
    return (2 * depth + 3) // 4 * 4 + ext


#: a slow channel's shift field is TFLM's shift minus this (fixed_point.h TF_CHANNEL_SLOW_BIAS)
CHANNEL_SLOW_BIAS = 64


def fast_channel(multiplier: int, shift: int, output_offset: int) -> tuple[int, int, int] | None:
    """(2M - 2^32, e, 2K) of tf_requantize_offset_s8's fast form (fixed_point.h, which
    proves it) for TFLM's multiplier M and shift = -e, the output offset folded into
    K = 2^30 + 2^(30+e) + output_offset * 2^(31+e); or None when the proof does not
    apply: M = 0, shift >= 0, or some int32 accumulator x makes T = 2K + x (2M - 2^32)
    leave int64 or the 32-bit value floor((2xM + 2K - 2^32 [x < 0]) / 2^32) leave int32
    (both are monotone in x on each side of 0, so the ends and both sides of 0 bound them)."""
    m, e = int(multiplier), -int(shift)
    if m == 0 or not 1 <= e <= 31:
        return None
    k2 = 2 * (2**30 + 2**(30 + e) + int(output_offset) * 2**(31 + e))
    mn = 2 * m - 2**32
    for x in (-(2**31), 2**31 - 1):
        if not -(2**63) <= k2 + x * mn < 2**63:
            return None
    for x in (-(2**31), -1, 0, 2**31 - 1):
        if not -(2**31) <= (2 * x * m + k2 - 2**32 * (x < 0)) >> 32 < 2**31:
            return None
    assert k2 % 2**32 == 2**31  # the low word SMMLAR rounds with (fixed_point.h)
    return mn, e, k2


def channel_table(bias: tuple[int, ...], multipliers: tuple[int, ...], shifts: tuple[int, ...],
                  output_offset: int | None = None) -> list[tuple[str, str, str, int, str]]:
    """Rows of tf_channel_s8 (tf_types.h): C literals but round_lo, an unsigned.

    A channel where `fast_channel` applies gets the fast form, the output offset
    folded in; any other (and every one when `output_offset` is None) the slow form,
    TFLM's multiplier and shift - CHANNEL_SLOW_BIAS, the kernel adding the offset."""
    rows = []
    for b, m, sh in zip(bias, multipliers, shifts, strict=True):
        if not (m == 0 or 2**30 <= m < 2**31):  # what the requantization's proofs assume
            raise ValueError(f"multiplier {m} outside [2^30, 2^31) and not 0")
        if not -31 <= sh <= 30:
            raise ValueError(f"shift {sh} outside [-31, 30]")
        fast = None if output_offset is None else fast_channel(m, sh, output_offset)
        if fast is None:
            rows.append((c_int(b), c_int(m), c_int(sh - CHANNEL_SLOW_BIAS), 0, c_int(0)))
        else:
            mn, e, k2 = fast
            rows.append((c_int(b), c_int(mn), c_int(e), k2 & 0xFFFFFFFF, c_int(k2 >> 32)))
    return rows


def _bias_data(bias: Tensor | None) -> np.ndarray | None:
    if bias is None:
        return None
    assert bias.data is not None
    return np.asarray(bias.data, dtype=np.int64).reshape(-1)


def conv_s8(*, op_index: int, opcode: str, depthwise: bool, x: Tensor, w: Tensor, bias: Tensor | None, y: Tensor,
            input_dims: tuple[int, int, int, int], filter_dims: tuple[int, int, int, int],
            output_dims: tuple[int, int, int, int], window: Window, depth_multiplier: int, activation: str,
            input_offset: int, output_offset: int, act_min: int, act_max: int, multipliers: tuple[int, ...],
            shifts: tuple[int, ...], macs: int) -> FastS8 | None:
    """The optimized step of an int8 CONV_2D / DEPTHWISE_CONV_2D, or None (keep the reference kernel)."""
    assert w.data is not None
    weights = np.asarray(w.data, dtype=np.int8)
    common = dict(op_index=op_index, opcode=opcode, reads=(x.index,), writes=(y.index,), macs=macs,
                  input=x.index, output=y.index, weights_index=w.index, multipliers=multipliers, shifts=shifts,
                  output_offset=output_offset, act_min=act_min, act_max=act_max, input_dims=input_dims,
                  filter_dims=filter_dims, output_dims=output_dims, input_offset=input_offset, window=window,
                  depth_multiplier=depth_multiplier)
    stride = f"stride {window.stride_h}x{window.stride_w}"
    if depthwise:
        taps = filter_dims[1] * filter_dims[2]
        channel_major = pack_depthwise(weights)
        eff = effective_bias(_bias_data(bias), channel_major.reshape(filter_dims[3], taps), input_offset)
        if depthwise_3x3_stream(filter_dims, depth_multiplier):
            packed = pack_depthwise_3x3(weights, eff, multipliers, shifts, output_offset=output_offset,
                                        act_min=act_min)
        else:
            packed = channel_major
        return FastS8(kernel="depthwise_conv2d_s8_fast", packed=tuple(int(v) for v in packed),
                      bias_eff=tuple(int(v) for v in eff), description=f"{activation}, {stride}",
                      scratch_bytes=input_dims[3], **common)
    out_c, k_h, k_w, group_c = filter_dims
    if group_c != input_dims[3]:
        return None  # grouped convolution: reference kernel
    rows = weights.reshape(out_c, k_h * k_w * group_c)
    eff = effective_bias(_bias_data(bias), rows, input_offset)
    pointwise = (k_h, k_w) == (1, 1) and (window.stride_h, window.stride_w) == (1, 1) \
        and (window.pad_h, window.pad_w) == (0, 0) and input_dims[1:3] == output_dims[1:3]
    kernel = "conv2d_1x1_s8_fast" if pointwise else "conv2d_s8_fast"
    packed = pack_rows(rows, ROW_GROUP[kernel], read_ahead=True)  # tf_mat_mult_s8_g2
    # the pointwise kernel may write over its own input (conv2d_1x1_s8_fast.c checks the distance)
    in_place = (pointwise_in_place(y.index, x.index, depth=group_c, rows=out_c),) if pointwise else ()
    return FastS8(kernel=kernel, packed=tuple(int(v) for v in packed), bias_eff=tuple(int(v) for v in eff),
                  description=f"{activation}, {stride}" + ("" if pointwise else ", im2col of 2 pixels"),
                  scratch_bytes=scratch_bytes(kernel, k_h * k_w * group_c), in_place=in_place, **common)


def fully_connected_s8(*, op_index: int, opcode: str, x: Tensor, w: Tensor, bias: Tensor | None, y: Tensor,
                       batches: int, accum_depth: int, output_depth: int, activation: str, input_offset: int,
                       filter_offset: int, output_offset: int, act_min: int, act_max: int,
                       multipliers: tuple[int, ...], shifts: tuple[int, ...], macs: int) -> FastS8 | None:
    """The optimized step of an int8 FULLY_CONNECTED, or None (asymmetric weights: reference kernel)."""
    if filter_offset != 0:
        return None
    assert w.data is not None
    rows = np.asarray(w.data, dtype=np.int8).reshape(output_depth, accum_depth)
    eff = effective_bias(_bias_data(bias), rows, input_offset)
    if len(multipliers) == 1:  # per-tensor: the kernel reads one per output channel
        multipliers, shifts = multipliers * output_depth, shifts * output_depth
    kernel = "fully_connected_s8_fast"
    return FastS8(kernel=kernel, op_index=op_index, opcode=opcode, reads=(x.index,), writes=(y.index,), macs=macs,
                  input=x.index, output=y.index, weights_index=w.index,
                  packed=tuple(int(v) for v in pack_rows(rows, ROW_GROUP[kernel])),
                  bias_eff=tuple(int(v) for v in eff), multipliers=tuple(multipliers), shifts=tuple(shifts),
                  output_offset=output_offset, act_min=act_min, act_max=act_max,
                  input_dims=(batches, 1, 1, accum_depth), filter_dims=(output_depth, 1, 1, accum_depth),
                  output_dims=(batches, 1, 1, output_depth), description=activation)
