"""How close a kernel's output may start to its input: the shifts of `InPlace`.

A kernel that walks its output pixels in raster order (batch, row, column)
can write its output over its input when every byte it writes is a byte no
later read needs. Which bytes are still needed follows from the geometry
alone, given what the kernel promises about its order (`RasterOrder`):

- the output pixels are written in raster order, `block` pixels at a time
  (the last block may be shorter), each pixel only at its own bytes;
- once the kernel has written any byte of a block, it reads input only inside
  the receptive fields of that block's pixels and of later pixels;
- `buffered`: the kernel has read (copied) all of a block's receptive fields
  before it writes any byte of that block, so a block's writes need only spare
  the later blocks' fields.

Then the output may start at `shift` bytes from the input (output offset -
input offset) if, for every block, the output bytes written up to the end of
that block lie below the lowest input byte any still-pending read touches.
The shift is the largest such value, and never above 0 (a smaller one is
always safe too: the output only moves further from what is still read, so
the planner may round it down to its alignment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.ir import InPlace


@dataclass(frozen=True)
class RasterOrder:
    """What a kernel guarantees about its order of reads and writes (see the module doc).

    `along`: "x", a block is `block` pixels of one output row (rows top to bottom,
    each left to right); "y", `block` rows are done together, a block being those
    rows' pixels of one column (columns left to right), the rows left over at the
    bottom then along x; "flat", a block is `block` consecutive pixels of the whole
    output in NHW order, across rows and batches (conv2d_s8_fast's im2col pairs)."""

    block: int = 1
    buffered: bool = False
    along: str = "x"

    def blocks(self, batches: int, height: int, width: int) -> list[np.ndarray]:
        """The output pixels (flat NHW indices) of each block, in the order they are written."""
        if self.block < 1 or self.along not in ("x", "y", "flat"):
            raise ValueError(f"not an order: {self}")
        if self.along == "flat":
            total = batches * height * width
            return [np.arange(i, min(i + self.block, total)) for i in range(0, total, self.block)]
        out: list[np.ndarray] = []
        for b in range(batches):
            base = b * height * width
            y = 0
            if self.along == "y":
                for y in range(0, height - height % self.block, self.block):
                    rows = base + (y + np.arange(self.block)) * width
                    out += [rows + x for x in range(width)]
                y = height - height % self.block
            for row in range(y, height):
                start = base + row * width
                out += [np.arange(start + x, start + min(x + self.block, width)) for x in range(0, width, self.block)]
        return out


def _lowest_valid(count: int, start: np.ndarray, step: int, taps: int) -> np.ndarray:
    """Per output position, the lowest input index in 0..count-1 its window reads (-1: none)."""
    best = np.full(start.shape, -1, dtype=np.int64)
    for k in range(taps - 1, -1, -1):  # the lowest valid tap wins: go down
        idx = start + k * step
        best = np.where((idx >= 0) & (idx < count), idx, best)
    return best


def window_shift(input_dims: tuple[int, int, int, int], output_dims: tuple[int, int, int, int], *,
                 kernel_hw: tuple[int, int], stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1),
                 pad: tuple[int, int] = (0, 0), order: RasterOrder | tuple[RasterOrder, ...] = RasterOrder(),
                 input_element_bytes: int = 1, output_element_bytes: int = 1) -> int:
    """The largest safe shift (<= 0) of a windowed op's NHWC output over its NHWC input.

    `pad` is (top, left): input row of output row y starts at y * stride_h - pad_top.
    Reads of padding (outside the input) touch no input byte. Several orders (a
    kernel that picks one at run time): the shift safe for all of them."""
    if isinstance(order, tuple):
        return min(window_shift(input_dims, output_dims, kernel_hw=kernel_hw, stride=stride, dilation=dilation,
                                pad=pad, order=o, input_element_bytes=input_element_bytes,
                                output_element_bytes=output_element_bytes) for o in order)
    n, in_h, in_w, in_c = input_dims
    n_out, out_h, out_w, out_c = output_dims
    if n != n_out:
        raise ValueError(f"batch {n} in, {n_out} out")
    rows = _lowest_valid(in_h, np.arange(out_h) * stride[0] - pad[0], dilation[0], kernel_hw[0])
    cols = _lowest_valid(in_w, np.arange(out_w) * stride[1] - pad[1], dilation[1], kernel_hw[1])
    pixel_bytes = in_c * input_element_bytes
    batch = np.arange(n)[:, None, None]
    lowest = ((batch * in_h + rows[None, :, None]) * in_w + cols[None, None, :]) * pixel_bytes
    none = np.broadcast_to((rows[None, :, None] < 0) | (cols[None, None, :] < 0), lowest.shape)
    inf = np.iinfo(np.int64).max // 4
    lowest = np.where(none, inf, lowest).reshape(-1)
    blocks = order.blocks(n, out_h, out_w)
    # per block: the lowest input byte its pixels read, and the end of the output bytes written once it is done
    block_low = np.array([lowest[b].min() for b in blocks] + [inf])
    written = np.maximum.accumulate(np.array([b.max() + 1 for b in blocks])) * (out_c * output_element_bytes)
    pending = np.minimum.accumulate(block_low[::-1])[::-1]  # pending[i]: lowest read of blocks i..
    still_read = pending[1:] if order.buffered else pending[:-1]
    return int(min(0, int(np.min(still_read - written, initial=inf))))


def pointwise_in_place(output: int, input: int, *, depth: int, rows: int) -> InPlace:
    """conv2d_1x1_s8_fast over its own input, at the input's first byte (shift 0).

    The kernel takes two pixels at a time and reads both (sign-extended into `ext`
    on the DSP path, else copied into scratch) before it writes either; at shift 0
    it goes forward (pixel 0 first) when rows <= depth, each output pixel no longer
    than its input pixel, else backward (the last pixels first), and so writes only
    bytes of pixels it has read (conv2d_1x1_s8_fast.c checks the overlap at run
    time). The copy needs no bytes beyond the `ext` area when depth % 4 == 0 and
    rows is even (the DSP path then reads only `ext`; the portable path leaves `ext`
    unused and copies there); otherwise it goes after `ext`: 2 * depth bytes,
    rounded up to 4."""
    extra = 0 if depth % 4 == 0 and rows % 2 == 0 else (2 * depth + 3) // 4 * 4
    return InPlace(output, input, shift=0, scratch_bytes=extra)


#: Kernels (C function names) that keep a `RasterOrder` and so may write their
#: output over their input at the distance window_shift finds: the code generator
#: then offers every call of theirs to the planner (farm.codegen.generator.plan_for).
#: A kernel's owner adds it here once its code keeps the order, e.g. a depthwise
#: kernel that writes each output pixel in raster order, channel by channel, after
#: reading that channel's taps: ``"depthwise_conv2d_s8_fast": RasterOrder()``.
RASTER_KERNELS: dict[str, RasterOrder | tuple[RasterOrder, ...]] = {
    # pixel by pixel (other filters, depth multipliers, channels not a multiple of 4), 3x3
    # pixel pairs along x, or pairs of rows column by column with the last row along x;
    # taps outside the input read the zero-point row in scratch, never the input
    "depthwise_conv2d_s8_fast": (RasterOrder(), RasterOrder(block=2), RasterOrder(block=2, along="y")),
    # two consecutive output pixels (across rows and batches) gathered into scratch, then
    # multiplied from there and written
    "conv2d_s8_fast": RasterOrder(block=2, buffered=True, along="flat"),
}


def raster_in_place(step: object) -> tuple[InPlace, ...]:
    """The in-place candidate of a windowed step (FastS8: input, output, the NHWC dims,
    filter dims (n, h, w, c) and window) whose kernel is in RASTER_KERNELS, else ()."""
    order = RASTER_KERNELS.get(getattr(step, "kernel", ""))
    window = getattr(step, "window", None)
    if order is None or window is None:
        return ()
    shift = window_shift(step.input_dims, step.output_dims, kernel_hw=tuple(step.filter_dims[1:3]),  # type: ignore[attr-defined]
                         stride=(window.stride_h, window.stride_w),
                         dilation=(window.dilation_h, window.dilation_w), pad=(window.pad_h, window.pad_w),
                         order=order)
    return (InPlace(step.output, step.input, shift=shift),)  # type: ignore[attr-defined]
