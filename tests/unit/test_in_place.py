"""Kernels that write their output over their input, and the memory plan that lets
them: the pointwise kernel at every distance from its input (host C), the shifts
farm.codegen.inplace derives (checked against a simulation of a raster-order
kernel on shared bytes), the planner's grouping (never two live buffers in one
place, an input read later never overwritten, the graph input and output kept
apart), and models with chains of pointwise layers bit-exact with tflite-micro."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fixtures_models import HOST_CFLAGS, KERNELS, compile_host_model, run_host_model
from fixtures_tools import require_tool

from farm.codegen.inplace import RasterOrder, pointwise_in_place, window_shift
from farm.codegen.planner import lifetimes, plan_memory


# --------------------------------------------------------------------------- #
# conv2d_1x1_s8_fast over its own input, at every distance (host, portable path)
# --------------------------------------------------------------------------- #

#: (pixels, input channels, output channels): same, shrinking, growing; even and odd
#: rows, depths that are and are not a multiple of 4, one and two pixels
POINTWISE_SHAPES = [(7, 8, 8), (6, 12, 10), (5, 7, 9), (9, 16, 4), (4, 5, 12), (1, 8, 8), (2, 3, 5), (3, 16, 32),
                    (10, 6, 6)]


def _c_array(ctype: str, name: str, values) -> str:
    return f"static const {ctype} {name}[] = {{{', '.join(str(int(v)) for v in values)}}};\n"


def test_pointwise_kernel_in_place_at_every_shift(tmp_path: Path):
    """For every output offset around its input the kernel either refuses the
    overlap (TF_ERROR_PARAMS) or gives the output it gives into a separate buffer;
    it never refuses the input's own first byte (the plan's shift 0), nor a
    separate buffer."""
    from farm.codegen.ops.optimized import ROW_GROUP, channel_table
    from farm.codegen.packing import pack_rows

    require_tool("gcc")
    rng = np.random.default_rng(15)
    body = ["#include <stdio.h>\n#include <string.h>\n#include \"kernels.h\"\n",
            "static int8_t arena[8192] __attribute__((aligned(16)));\n",
            "static int8_t separate[4096], scratch[4096] __attribute__((aligned(16)));\n"]
    runs = []
    for i, (pixels, depth, rows) in enumerate(POINTWISE_SHAPES):
        weights = rng.integers(-128, 128, size=(rows, depth), dtype=np.int8)
        x = rng.integers(-128, 128, size=pixels * depth, dtype=np.int8)
        bias = rng.integers(-5000, 5000, size=rows)
        mult = rng.integers(2**30, 2**31, size=rows)
        shifts = rng.integers(-12, -6, size=rows)
        table = channel_table(tuple(int(b) for b in bias), tuple(int(m) for m in mult),
                              tuple(int(s) for s in shifts))
        body.append(_c_array("int8_t", f"w{i}", pack_rows(weights, ROW_GROUP["conv2d_1x1_s8_fast"], read_ahead=True)))
        body.append(_c_array("int8_t", f"x{i}", x))
        body.append(f"static const tf_channel_s8 ch{i}[] = {{"
                    + ", ".join(f"{{{b}, {m}, {s}, {lo}u, {hi}}}" for b, m, s, lo, hi in table) + "};\n")
        runs.append((i, pixels, depth, rows))
    body.append("int main(void) {\n  int failures = 0;\n")
    for i, pixels, depth, rows in runs:
        span = pixels * max(depth, rows) + 8
        body.append(f"""  {{
    const tf_out_stage_s8 stage = {{ch{i}, -3, -128, 127}};
    const tf_dims in_dims = {{1, {pixels}, 1, {depth}}}, f_dims = {{{rows}, 1, 1, {depth}}};
    const tf_dims out_dims = {{1, {pixels}, 1, {rows}}};
    if (conv2d_1x1_s8_fast(&stage, &in_dims, x{i}, &f_dims, w{i}, &out_dims, separate, scratch) != TF_OK) {{
      printf("shape {i}: separate buffers refused\\n");
      return 1;
    }}
    int ok = 0, refused = 0, wrong = 0, zero = -1;
    for (int s = -{span}; s <= {span}; ++s) {{
      int8_t *in = arena + 4096, *out = in + s;
      memset(arena, 0x55, sizeof arena);
      memcpy(in, x{i}, sizeof x{i});
      const tf_status st = conv2d_1x1_s8_fast(&stage, &in_dims, in, &f_dims, w{i}, &out_dims, out, scratch);
      if (st == TF_ERROR_PARAMS) {{
        ++refused;
      }} else if (st != TF_OK || memcmp(out, separate, {pixels * rows}) != 0) {{
        ++wrong;
        if (wrong < 4) printf("shape {i}: shift %d status %d wrong\\n", s, (int)st);
      }} else {{
        ++ok;
      }}
      if (s == 0) zero = st;
      if ((s <= -{pixels * rows} || s >= {pixels * depth}) && st != TF_OK) ++wrong; /* no overlap */
    }}
    printf("shape {i} ok %d refused %d wrong %d zero %d\\n", ok, refused, wrong, zero);
    failures += wrong != 0 || zero != TF_OK;
  }}
""")
    body.append("  return failures != 0;\n}\n")
    source = tmp_path / "pointwise_in_place.c"
    source.write_text("".join(body))
    exe = tmp_path / "pointwise_in_place"
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-I{KERNELS / 'include'}", str(source),
                            str(KERNELS / "src" / "conv2d_1x1_s8_fast.c"), str(KERNELS / "src" / "mat_mult_s8.c"),
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout
    lines = run.stdout.splitlines()
    assert len(lines) == len(POINTWISE_SHAPES) and all(" wrong 0 zero 0" in line for line in lines), run.stdout
    # a shrinking layer refuses the middle distances (neither order spares them)
    assert " refused 0 " not in lines[POINTWISE_SHAPES.index((9, 16, 4))], run.stdout


def test_pointwise_declares_shift_zero_and_the_copy_it_needs():
    assert pointwise_in_place(3, 2, depth=64, rows=64).shift == 0
    assert pointwise_in_place(3, 2, depth=64, rows=64).scratch_bytes == 0  # the copy fits in `ext`
    assert pointwise_in_place(3, 2, depth=7, rows=8).scratch_bytes == 16  # 2 * 7, rounded to 4
    assert pointwise_in_place(3, 2, depth=8, rows=9).scratch_bytes == 16


# --------------------------------------------------------------------------- #
# window_shift: a raster-order kernel simulated on shared bytes
# --------------------------------------------------------------------------- #

def _simulate(shape_in, k, stride, pad, out_hw, shift, order: RasterOrder, depthwise: bool, seed: int) -> bool:
    """Run a raster-order convolution on one byte array with its output `shift` bytes
    from its input; True when the output equals the one computed on separate buffers."""
    h, w, c = shape_in
    oh, ow = out_hw
    oc = c if depthwise else 3
    rng = np.random.default_rng(seed)
    x = rng.integers(-50, 50, size=(h, w, c))
    weights = rng.integers(-3, 4, size=(k[0], k[1], c, oc))

    def pixel(read, oy, ox):
        acc = np.zeros(oc, dtype=np.int64)
        for ky in range(k[0]):
            for kx in range(k[1]):
                iy, ix = oy * stride[0] - pad[0] + ky, ox * stride[1] - pad[1] + kx
                if 0 <= iy < h and 0 <= ix < w:
                    v = read(iy, ix)
                    acc += v * weights[ky, kx].diagonal() if depthwise else v @ weights[ky, kx]
        return acc

    want = np.array([[pixel(lambda iy, ix: x[iy, ix], oy, ox) for ox in range(ow)] for oy in range(oh)])
    base = max(0, -shift) + 8
    mem = np.zeros(base + max(h * w * c, shift + oh * ow * oc) + 8, dtype=np.int64)
    mem[base:base + h * w * c] = x.reshape(-1)
    out_at = base + shift
    for flat in order.blocks(1, oh, ow):
        block = [(int(i) // ow, int(i) % ow) for i in flat]
        read = lambda iy, ix: mem[base + (iy * w + ix) * c: base + (iy * w + ix + 1) * c].copy()  # noqa: E731
        if order.buffered:  # all of the block read first
            values = [pixel(read, oy, ox) for oy, ox in block]
        for j, (oy, ox) in enumerate(block):
            at = out_at + (oy * ow + ox) * oc
            if order.buffered:
                mem[at:at + oc] = values[j]
            elif depthwise:  # channel by channel, as depthwise_conv2d_s8_fast: read a channel, write it
                for ch in range(oc):
                    mem[at + ch] = pixel(read, oy, ox)[ch]
            else:
                mem[at:at + oc] = pixel(read, oy, ox)
    got = mem[out_at:out_at + oh * ow * oc].reshape(oh, ow, oc)
    return bool(np.array_equal(got, want))


WINDOW_CASES = [
    # (input h, w, c), kernel, stride, pad (top, left), output (h, w), order, depthwise
    ((6, 5, 4), (3, 3), (1, 1), (1, 1), (6, 5), RasterOrder(), True),  # KWS's depthwise, smaller
    ((8, 8, 3), (3, 3), (2, 2), (0, 0), (4, 4), RasterOrder(), True),  # stride 2, "same" (pad bottom only)
    ((7, 6, 2), (3, 3), (1, 1), (1, 1), (7, 6), RasterOrder(block=2, buffered=True), False),  # im2col of 2 pixels
    ((9, 4, 2), (5, 3), (2, 1), (2, 1), (5, 4), RasterOrder(block=2), False),
    ((5, 5, 2), (1, 1), (1, 1), (0, 0), (5, 5), RasterOrder(block=2, buffered=True), False),
    ((7, 5, 4), (3, 3), (1, 1), (1, 1), (7, 5), RasterOrder(block=2, along="y"), True),  # pairs of rows
    ((9, 6, 4), (3, 3), (2, 2), (1, 1), (5, 3), RasterOrder(block=2, along="y"), True),
    # conv2d_s8_fast: pairs of consecutive pixels across row ends (odd widths), gathered first
    ((7, 5, 2), (3, 3), (1, 1), (1, 1), (7, 5), RasterOrder(block=2, buffered=True, along="flat"), False),
    ((9, 7, 3), (3, 3), (2, 2), (1, 1), (5, 4), RasterOrder(block=2, buffered=True, along="flat"), False),
    ((6, 3, 4), (1, 1), (1, 1), (0, 0), (6, 3), RasterOrder(block=2, buffered=True, along="flat"), False),
]


@pytest.mark.parametrize("case", range(len(WINDOW_CASES)))
def test_window_shift_is_safe_and_tight(case: int):
    shape_in, k, stride, pad, out_hw, order, depthwise = WINDOW_CASES[case]
    out_c = shape_in[2] if depthwise else 3
    shift = window_shift((1, *shape_in), (1, *out_hw, out_c), kernel_hw=k, stride=stride, pad=pad, order=order)
    assert shift <= 0
    for seed in range(3):
        for s in (shift, shift - 1, shift - 17, shift - 200):
            assert _simulate(shape_in, k, stride, pad, out_hw, s, order, depthwise, seed), (case, s)
    # two output pixels closer, some read finds its byte overwritten (the bound is exact for a kernel
    # that reads a whole pixel before writing it, one pixel short for one that goes channel by channel;
    # strided windows skip input pixels, so there it may be looser)
    if shift < 0 and stride == (1, 1) and (order.block == 1 or order.buffered):
        assert not all(_simulate(shape_in, k, stride, pad, out_hw, shift + 2 * out_c, order, depthwise, seed)
                       for seed in range(3)), case


def test_window_shift_of_the_zoo_shapes():
    # KWS's depthwise 3x3 "same" on 25x5x64: the output starts a row and two pixels below
    assert window_shift((1, 25, 5, 64), (1, 25, 5, 64), kernel_hw=(3, 3), pad=(1, 1)) == -(5 + 2) * 64
    # VWW's stride-2 depthwise 48x48x16 -> 24x24x16: one output pixel below
    assert window_shift((1, 48, 48, 16), (1, 24, 24, 16), kernel_hw=(3, 3), stride=(2, 2)) == -16


# --------------------------------------------------------------------------- #
# the planner
# --------------------------------------------------------------------------- #

def _live_overlaps(buffers, plan, pairs):
    """Pairs of tensors with bytes in common while both live, but an in-place pair at its step."""
    bad = []
    for a in buffers:
        for b in buffers:
            if a.tensor >= b.tensor or not a.overlaps(b):
                continue
            oa, ob = plan.offset(a.tensor), plan.offset(b.tensor)
            if oa + a.size <= ob or ob + b.size <= oa:
                continue
            step = pairs.get((b.tensor, a.tensor), pairs.get((a.tensor, b.tensor)))
            if step is None or not (min(a.last, b.last) == step == max(a.first, b.first)):
                bad.append((a, b))
    return bad


def test_shifted_in_place_places_the_output_at_its_distance():
    # t0 -conv-> t1 -dw(shift -48)-> t2 -pw(shift 0)-> t3 -fc-> t4
    steps = [((0,), (1,)), ((1,), (2,)), ((2,), (3,)), ((3,), (4,))]
    sizes = {0: 100, 1: 320, 2: 320, 3: 320, 4: 8}
    buffers = lifetimes(steps, sizes, [0], [4])
    plan = plan_memory(buffers, inplace=[(1, 2, 1, -40), (2, 3, 2, 0)])
    assert plan.offset(2) - plan.offset(1) == -48  # -40 rounded down to the alignment: still safe
    assert plan.offset(3) == plan.offset(2)
    assert {(s, o, i) for s, o, i in plan.in_place} == {(1, 2, 1), (2, 3, 2)}
    assert plan.arena_bytes <= 368 + 112  # 320 + 48 of drift, beside t0 (100 -> 112) at step 0
    assert not _live_overlaps(buffers, plan, {(2, 1): 1, (3, 2): 2})


def test_no_in_place_over_an_input_read_later_nor_between_graph_input_and_output():
    # t1 is read again at step 3 (a residual): the pointwise at step 1 must not overwrite it
    steps = [((0,), (1,)), ((1,), (2,)), ((2,), (3,)), ((3, 1), (4,))]
    sizes = {0: 64, 1: 64, 2: 64, 3: 64, 4: 64}
    buffers = lifetimes(steps, sizes, [0], [4])
    plan = plan_memory(buffers, inplace=[(1, 2, 1, 0), (2, 3, 2, 0)], apart=[(0, 4)])
    assert (1, 2, 1) not in plan.in_place and (2, 3, 2) in plan.in_place
    assert not _live_overlaps(buffers, plan, {(3, 2): 2})
    # one layer: its input is the graph input, its output the graph output -> apart
    plan = plan_memory(lifetimes([((0,), (1,))], {0: 64, 1: 64}, [0], [1]), inplace=[(0, 1, 0, 0)],
                       apart=[(0, 1)])
    assert plan.in_place == () and plan.offset(0) != plan.offset(1)
    # over the graph input (the harness refills it before every inference) is fine,
    # but then the graph output, in that buffer's chain, is not
    steps = [((0,), (1,)), ((1,), (2,))]
    plan = plan_memory(lifetimes(steps, {0: 64, 1: 64, 2: 64}, [0], [2]), inplace=[(0, 1, 0, 0), (1, 2, 1, 0)],
                       apart=[(0, 2)])
    assert plan.in_place == ((0, 1, 0),)
    assert plan.offset(2) + 64 <= plan.offset(0) or plan.offset(0) + 64 <= plan.offset(2)


def test_planner_never_overlaps_live_buffers_with_shifted_in_place():
    rng = np.random.default_rng(6)
    for _ in range(150):
        n = int(rng.integers(2, 10))
        steps = [((int(rng.integers(0, i + 1)),), (i + 1,)) for i in range(n)]
        sizes = {t: int(rng.integers(1, 300)) for t in range(n + 1)}
        buffers = lifetimes(steps, sizes, [0], [n])
        inplace = [(i, i + 1, steps[i][0][0], -int(rng.integers(0, 200))) if rng.random() < 0.6
                   else (i, i + 1, steps[i][0][0]) for i in range(n) if rng.random() < 0.7]
        plan = plan_memory(buffers, inplace=inplace, apart=[(0, n)])
        pairs = {(c[1], c[2]): c[0] for c in inplace}
        assert not _live_overlaps(buffers, plan, pairs), (steps, sizes, inplace, plan.offsets)
        for a in buffers:
            assert plan.offset(a.tensor) % 16 == 0 and 0 <= plan.offset(a.tensor)
            assert plan.offset(a.tensor) + a.size <= plan.arena_bytes
        for c in inplace:
            if c[:3] in plan.in_place:
                got = plan.offset(c[1]) - plan.offset(c[2])
                want = c[3] // 16 * 16 if len(c) > 3 else 0
                assert got == want, (c, got)
        o0, on = plan.offset(0), plan.offset(n)
        assert o0 + sizes[0] <= on or on + sizes[n] <= o0  # the graph input and output apart
        assert plan.arena_bytes <= plan_memory(buffers, apart=[(0, n)]).arena_bytes  # never worse than none


# --------------------------------------------------------------------------- #
# models: chains of pointwise layers, bit-exact with tflite-micro
# --------------------------------------------------------------------------- #

def pointwise_chain_model():
    """Pointwise layers that keep, shrink and grow the channels (even and odd, depths
    that are and are not multiples of 4), each over the previous one's output."""
    import keras

    keras.utils.set_random_seed(31)
    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.3)
    inputs = keras.Input((7, 5, 8), batch_size=1)
    x = layers.Conv2D(8, 1, activation="relu", bias_initializer=bias)(inputs)  # over the graph input
    x = layers.Conv2D(12, 1, activation="relu", bias_initializer=bias)(x)  # grows: backward
    x = layers.Conv2D(7, 1, bias_initializer=bias)(x)  # shrinks, odd rows
    x = layers.Conv2D(9, 1, activation="relu6", bias_initializer=bias)(x)  # odd depth, grows
    x = layers.Conv2D(16, 1, bias_initializer=bias)(x)
    x = layers.Conv2D(16, 1, activation="relu", bias_initializer=bias)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(6, bias_initializer=bias)(x))


def test_pointwise_chain_runs_in_place_bit_exact_on_the_host(tmp_path: Path):
    from farm.codegen.generator import plan_for
    from farm.codegen.lowering import lower
    from farm.codegen.tflite_reader import parse_tflite, read_tflite
    from farm.models.convert import to_int8
    from farm.models.quantization import quantize
    from farm.models.reference import run_tflm

    rng = np.random.default_rng(32)
    tflite = to_int8(pointwise_chain_model(), rng.normal(0, 1.0, size=(32, 7, 5, 8)).astype(np.float32))
    path = tmp_path / "pointwise_chain.tflite"
    path.write_bytes(tflite)
    lowered = lower(read_tflite(path))
    plan = plan_for(lowered)
    pointwise = [i for i, s in enumerate(lowered.steps) if s.kernel == "conv2d_1x1_s8_fast"]
    assert len(pointwise) == 6
    assert {s for s, _, _ in plan.in_place} >= set(pointwise[:6]), plan.in_place
    sizes = lowered.arena_tensors()
    assert plan.arena_bytes < 2 * max(sizes.values())  # one buffer for the chain
    # the odd-depth / odd-row layers need the copy after `ext`
    assert plan.scratch_bytes > lowered.scratch_bytes
    graph = parse_tflite(tflite).main
    q = graph.tensors[graph.inputs[0]].quant
    samples = quantize(rng.normal(0, 1.5, size=(6, 7, 5, 8)).astype(np.float32), q.scale, q.zero_point)
    exe = compile_host_model(path, tmp_path / "host", name="pointwise_chain", variant="int8")
    got = run_host_model(exe, samples, np.int8, (6,))
    np.testing.assert_array_equal(got, run_tflm(tflite, samples).reshape(got.shape))


def windowed_model():
    """Depthwise 3x3 (stride 1 and 2, multiplier 1 and 2) and im2col convolutions, each
    over the previous layer's output, with pointwise layers between."""
    import keras

    keras.utils.set_random_seed(33)
    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.3)
    inputs = keras.Input((11, 7, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=bias)(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer=bias)(x)
    x = layers.Conv2D(8, 1, bias_initializer=bias)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", bias_initializer=bias)(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", bias_initializer=bias)(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", bias_initializer=bias)(x)
    x = layers.Conv2D(5, 1, bias_initializer=bias)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(4, bias_initializer=bias)(x))


@pytest.mark.parametrize("kernel", ["depthwise_conv2d_s8_fast", "conv2d_s8_fast"])
def test_raster_kernel_in_place_bit_exact_on_the_host(kernel: str, tmp_path: Path, monkeypatch):
    """What a kernel's owner checks before adding it to RASTER_KERNELS (and what keeps
    it honest after): with its calls offered to the planner, they run over their
    input and the model stays identical to tflite-micro."""
    from farm.codegen import inplace
    from farm.codegen.generator import plan_for
    from farm.codegen.lowering import lower
    from farm.codegen.tflite_reader import parse_tflite, read_tflite
    from farm.models.convert import to_int8
    from farm.models.quantization import quantize
    from farm.models.reference import run_tflm

    # what the kernel declares, or else every order it may take today: pixel by pixel,
    # pairs along x, pairs along y (depthwise_conv2d_s8_fast's 3x3 paths)
    monkeypatch.setitem(inplace.RASTER_KERNELS, kernel, inplace.RASTER_KERNELS.get(
        kernel, (RasterOrder(), RasterOrder(block=2), RasterOrder(block=2, along="y"))))
    rng = np.random.default_rng(34)
    tflite = to_int8(windowed_model(), rng.normal(0, 1.0, size=(32, 11, 7, 3)).astype(np.float32))
    path = tmp_path / "windowed.tflite"
    path.write_bytes(tflite)
    lowered = lower(read_tflite(path))
    plan = plan_for(lowered)
    steps = [i for i, s in enumerate(lowered.steps) if s.kernel == kernel]
    taken = [i for i in steps if i in {s for s, _, _ in plan.in_place}]
    assert taken, (kernel, plan.in_place)
    for i in taken:
        step = lowered.steps[i]
        assert plan.offset(step.output) < plan.offset(step.input)  # below it: a window reads the row above
    graph = parse_tflite(tflite).main
    q = graph.tensors[graph.inputs[0]].quant
    samples = quantize(rng.normal(0, 1.5, size=(6, 11, 7, 3)).astype(np.float32), q.scale, q.zero_point)
    exe = compile_host_model(path, tmp_path / "host", name="windowed", variant="int8")
    got = run_host_model(exe, samples, np.int8, (4,))
    np.testing.assert_array_equal(got, run_tflm(tflite, samples).reshape(got.shape))
