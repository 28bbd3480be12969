"""Host-side requantization math: QuantizeMultiplier, TFLM's effective scales,
and the device's fixed-point helper (fixed_point.h) against its Python model.

The TFLM-facing tests are made sensitive on purpose: they pick inputs where the
alternatives (a float instead of a double scale product, single instead of
double rounding) give different outputs, and check TFLM agrees with ours there.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from farm.codegen.quantize_multiplier import (
    activation_range_f32,
    activation_range_int8,
    fc_real_multiplier,
    multiply_by_quantized_multiplier,
    quantize_bound,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from fixtures_tools import require_tool

REPO = Path(__file__).resolve().parents[2]
KERNEL_INCLUDE = REPO / "farm" / "firmware" / "lib" / "kernels" / "include"


@pytest.mark.parametrize("real,expected", [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),
    (1.0, (1 << 30, 1)),
    (0.25, (1 << 30, -1)),
    (0.75, (3 << 29, 0)),
    (2.0 ** -31, (1 << 30, -30)),
    (2.0 ** -32, (1 << 30, -31)),
    (2.0 ** -40, (0, 0)),  # shift below -31: flushed to zero
    (1.0 - 2.0 ** -40, (1 << 30, 1)),  # rounds up to 2^31: halved, exponent bumped
])
def test_quantize_multiplier_known_values(real, expected):
    assert quantize_multiplier(real) == expected


def test_quantize_multiplier_reconstructs_the_real_value():
    rng = np.random.default_rng(0)
    for real in np.exp(rng.uniform(np.log(1e-9), np.log(50.0), size=2000)):
        m, shift = quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        back = m * 2.0 ** (shift - 31)
        assert abs(back - real) <= real * 2.0 ** -30  # half a Q0.31 unit, relative


def test_quantize_multiplier_rounds_half_away_from_zero():
    # q * 2^31 = 2^30 + 0.5 exactly: TfLiteRound (std::round) goes up, not to even
    real = (2.0 ** 30 + 0.5) / 2.0 ** 31
    assert quantize_multiplier(real) == ((1 << 30) + 1, 0)
    real = (2.0 ** 30 + 1.5) / 2.0 ** 31
    assert quantize_multiplier(real) == ((1 << 30) + 2, 0)


def test_fc_real_multiplier_is_a_double_product():
    s_in, s_w, s_out = np.float32(0.0123457), np.float32(0.00398118), np.float32(0.0101)
    assert fc_real_multiplier(s_in, s_w, s_out) == float(s_in) * float(s_w) / float(s_out)
    assert fc_real_multiplier(s_in, s_w, s_out) != float(s_in * s_w) / float(s_out)  # not via a float product


def test_activation_ranges():
    assert activation_range_int8("NONE", 0.05, 3) == (-128, 127)
    assert activation_range_int8("RELU", 0.05, -128) == (-128, 127)
    assert activation_range_int8("RELU", 0.05, 10) == (10, 127)
    assert activation_range_int8("RELU6", 0.1, -20) == (-20, 40)  # 6 / 0.1 = 60 -> -20 + 60
    assert activation_range_int8("RELU6", 6.0 / 255, -128) == (-128, 127)
    assert quantize_bound(6.0, 0.08, 0) == 75  # 75 exactly
    assert quantize_bound(6.0, 12.0, 0) == 1  # 0.5 rounds away from zero
    lo, hi = activation_range_f32("NONE")
    assert lo == -np.finfo(np.float32).max and hi == np.finfo(np.float32).max
    assert activation_range_f32("RELU6") == (0.0, 6.0)
    with pytest.raises(ValueError, match="TANH"):
        activation_range_int8("TANH", 0.1, 0)


def test_fixed_point_primitives_python_model():
    assert saturating_rounding_doubling_high_mul(-(2**31), -(2**31)) == 2**31 - 1
    assert saturating_rounding_doubling_high_mul(1, 1 << 30) == 1  # 0.5 -> 1
    assert saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0  # -0.5 -> 0 (toward +inf)
    assert saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1  # -1.5 -> -1
    assert rounding_divide_by_pot(5, 1) == 3 and rounding_divide_by_pot(-5, 1) == -3  # away from zero
    assert rounding_divide_by_pot(-6, 2) == -2 and rounding_divide_by_pot(6, 2) == 2
    assert rounding_divide_by_pot(7, 0) == 7
    assert multiply_by_quantized_multiplier(1000, 1 << 30, 0) == 500
    assert multiply_by_quantized_multiplier(1000, 1 << 30, 2) == 2000


_C_CHECK = r"""
#include <stdio.h>
#include "fixed_point.h"
int main(void) {
  long x, m, s;
  while (scanf("%ld %ld %ld", &x, &m, &s) == 3) {
    printf("%ld %ld %ld\n",
           (long)tf_saturating_rounding_doubling_high_mul((int32_t)x, (int32_t)m),
           (long)tf_rounding_divide_by_pot((int32_t)x, (int32_t)(s < 0 ? -s : s)),
           (long)tf_multiply_by_quantized_multiplier((int32_t)x, (int32_t)m, (int32_t)s));
  }
  return 0;
}
"""


def test_fixed_point_header_matches_python_model(tmp_path):
    require_tool("gcc")  # missing: skip, or FAIL in CI (tests/fixtures_tools.py)
    src = tmp_path / "check.c"
    src.write_text(_C_CHECK)
    exe = tmp_path / "check"
    build = subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
                            str(src), "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr

    rng = np.random.default_rng(1)
    cases = [(-(2**31), -(2**31), 0), (2**31 - 1, 2**31 - 1, -31), (-(2**31), 2**31 - 1, 30),
             (0, 1 << 30, 0), (-1, 1 << 30, -1), (1, 1 << 30, -1), (-3, 1 << 30, -1)]
    for _ in range(3000):
        x = int(rng.integers(-(2**31), 2**31))
        if rng.random() < 0.5:
            x >>= int(rng.integers(0, 31))  # small magnitudes too
        m = int(rng.integers(1 << 30, 1 << 31))
        shift = int(rng.integers(-31, 31))
        if shift > 0:
            x >>= shift  # keep x << shift inside int32, as real accumulators are
        cases.append((x, m, shift))
    stdin = "\n".join(f"{x} {m} {s}" for x, m, s in cases)
    run = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0
    got = [tuple(map(int, line.split())) for line in run.stdout.splitlines()]
    assert len(got) == len(cases)
    for (x, m, s), (c_srdhm, c_rdbpot, c_mbqm) in zip(cases, got):
        assert c_srdhm == saturating_rounding_doubling_high_mul(x, m), (x, m)
        assert c_rdbpot == rounding_divide_by_pot(x, abs(s)), (x, s)
        assert c_mbqm == multiply_by_quantized_multiplier(x, m, s), (x, m, s)


# --------------------------------------------------------------------------- #
# Against TFLM itself, where the alternatives would give different outputs
# --------------------------------------------------------------------------- #

def _mbqm_np(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, *,
             single_rounding: bool = False) -> np.ndarray:
    """Vectorized MultiplyByQuantizedMultiplier over the last axis (one multiplier and
    shift per output channel): TFLM's double rounding, or TFLite's single-rounding build."""
    x = acc.astype(np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if single_rounding:
        total = 31 - shift
        return (x * multiplier + (np.int64(1) << (total - 1))) >> total
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    ab = (x << left) * multiplier
    total = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.sign(total) * (np.abs(total) >> 31)  # '/' truncates toward zero
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def _fc_int8_np(q_in, weights, bias, in_zp, out_zp, quantized, *, single_rounding=False):
    acc = (q_in.astype(np.int64) - in_zp) @ weights.astype(np.int64).T + bias.astype(np.int64)
    multipliers = [m for m, _ in quantized]
    shifts = [s for _, s in quantized]
    return np.clip(_mbqm_np(acc, multipliers, shifts, single_rounding=single_rounding) + out_zp, -128, 127)


def _separating_inputs(rng, width, predict_a, predict_b, *, want=20, chunk=20_000, max_samples=400_000):
    """Random int8 inputs on which the two predictions differ (up to `want` of them)."""
    found = []
    for _ in range(max_samples // chunk):
        q_in = rng.integers(-128, 128, size=(chunk, width)).astype(np.int8)
        differs = np.any(predict_a(q_in) != predict_b(q_in), axis=1)
        found.extend(q_in[differs][: want - len(found)])
        if len(found) >= want:
            break
    return np.array(found, dtype=np.int8).reshape(-1, width)


def _dense_model(seed: int, width: int, units: int):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape=(width,), batch_size=1),
                             keras.layers.Dense(units, bias_initializer=keras.initializers.RandomNormal(stddev=0.3))])


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
def test_double_rounding_agrees_with_tflite_micro(per_channel):
    """On a converted model, TFLM agrees with our multipliers and double rounding,
    including on inputs where single rounding would give other outputs."""
    from farm.models.convert import to_int8
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    width, units = 16, 256
    model = _dense_model(7, width, units)
    rng = np.random.default_rng(7)
    tflite = to_int8(model, rng.normal(size=(32, width)).astype(np.float32), per_channel=per_channel)
    graph = parse_tflite(tflite).main
    (fc,) = graph.operators
    assert min(fc.inputs) >= 0, "expected input, weights and bias"
    x, w, b, y = (graph.tensors[i] for i in (*fc.inputs, fc.outputs[0]))
    assert w.quant.per_channel == per_channel
    scales = w.quant.scales if per_channel else np.repeat(w.quant.scales[:1], units)
    ours = [quantize_multiplier(fc_real_multiplier(x.quant.scale, s, y.quant.scale)) for s in scales]

    fixed = (w.data, b.data, x.quant.zero_point, y.quant.zero_point)

    def predict(q, single=False):
        return _fc_int8_np(q, *fixed, ours, single_rounding=single)

    by_rounding = _separating_inputs(rng, width, predict, lambda q: predict(q, single=True))
    assert len(by_rounding) > 0, "no input separates single from double rounding"
    q_in = np.concatenate([rng.integers(-128, 128, size=(100, width)).astype(np.int8), by_rounding])
    np.testing.assert_array_equal(run_tflm(tflite, q_in).astype(np.int64), predict(q_in))


def _widest_float_product_error(rng) -> tuple[np.float32, np.float32]:
    """Two float32 scales whose float product is as far as it gets from the exact one."""
    a = rng.uniform(0.005, 0.05, size=20000).astype(np.float32)
    b = rng.uniform(0.001, 0.01, size=20000).astype(np.float32)
    error = np.abs((a * b).astype(np.float64) - a.astype(np.float64) * b.astype(np.float64))
    best = int(np.argmax(error / (a.astype(np.float64) * b)))
    return a[best], b[best]


def test_per_tensor_scale_product_matches_tflite_micro():
    """Per-tensor weights: the installed TFLM multiplies input and weight scale in
    double (older TFLM source multiplied them in float; this pins which one).

    A converted Dense model is rewritten so the difference shows: scales whose
    float product is off by ~2^-24, zero weights, and biases chosen as
    accumulators on which the float and the double product round differently.
    """
    import keras

    from farm.models.convert import pack_model, to_int8
    from farm.models.reference import run_tflm
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    units = 64
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input(shape=(1,), batch_size=1),
                              keras.layers.Dense(units, bias_initializer="ones")])
    rng = np.random.default_rng(5)
    tflite = to_int8(model, rng.normal(size=(16, 1)).astype(np.float32), per_channel=False)

    s_in, s_w = _widest_float_product_error(rng)
    s_out = np.float32(float(s_in * s_w) / 1e-6)  # effective scale ~1e-6: wide accumulators
    as_double = quantize_multiplier(fc_real_multiplier(s_in, s_w, s_out))
    as_float = quantize_multiplier(float(s_in * s_w) / float(s_out))
    assert as_float != as_double

    # Accumulators whose outputs differ between the two multipliers: for each
    # output level k, scan around the accumulator where k is reached.
    chosen = []
    for k in range(1, 120):
        center = int((k - 0.5) * 1e6)
        acc = np.arange(center - 2000, center + 2000, dtype=np.int64)
        differs = _mbqm_np(acc, as_float[0], as_float[1]) != _mbqm_np(acc, as_double[0], as_double[1])
        chosen.extend(acc[differs][:1] * (-1) ** k)  # both signs
        if len(chosen) == units:
            break
    assert len(chosen) >= 8, "no accumulator separates the two products"
    chosen = np.array(chosen, dtype=np.int64)
    biases = np.resize(chosen, units).astype(np.int32)

    fb = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    sg = fb.subgraphs[0]
    (op,) = sg.operators
    x_t, w_t, b_t = (sg.tensors[i] for i in op.inputs)
    y_t = sg.tensors[op.outputs[0]]
    x_t.quantization.scale, x_t.quantization.zeroPoint = [float(s_in)], [0]
    w_t.quantization.scale, w_t.quantization.zeroPoint = [float(s_w)], [0]
    b_t.quantization.scale, b_t.quantization.zeroPoint = [float(np.float32(s_in * s_w))], [0]
    y_t.quantization.scale, y_t.quantization.zeroPoint = [float(s_out)], [0]
    fb.buffers[w_t.buffer].data = np.zeros(units, dtype=np.uint8)
    fb.buffers[b_t.buffer].data = np.frombuffer(biases.tobytes(), dtype=np.uint8)
    crafted = pack_model(fb)

    out = run_tflm(crafted, np.zeros((1, 1), dtype=np.int8))[0].astype(np.int64)
    expected = np.clip(_mbqm_np(biases, as_double[0], as_double[1]), -128, 127)
    with_float = np.clip(_mbqm_np(biases, as_float[0], as_float[1]), -128, 127)
    np.testing.assert_array_equal(out, expected)
    assert np.all(out != with_float)
