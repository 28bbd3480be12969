"""Kernels + generated model code, compiled for the host, against the host references.

- int8: identical to the TFLM interpreter on every sample (the farm's bit-exact
  promise), for the sine model and for randomized Dense stacks with per-tensor
  and per-channel weights and NONE/RELU/RELU6.
- float32: within FLOAT_TOL of tf.lite.Interpreter.
- int8-weights: within the same FLOAT_TOL. The C kernel dequantizes each weight
  to exactly the float TFLite's DEQUANTIZE produces (scale * q is exact in
  double, so both round once to the same float); what is left is float
  summation order (TensorFlow's optimized kernels vs the reference loop) over
  dot products of at most a few dozen O(1) terms: ~1e-6 relative. 1e-5 absolute
  on outputs of magnitude ~1 leaves a 10x margin and still catches any real
  dequantization or scale error (those are >= one int8 step, ~1e-2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures_models import build_host_model, model_cache_dir, run_host_model, sine_artifacts  # noqa: F401

FLOAT_TOL = 1e-5


def _run_artifacts(build_host_model, art) -> np.ndarray:
    exe = build_host_model(art.tflite_path, name=art.name, variant=art.variant)
    return run_host_model(exe, art.test_inputs, art.ref_outputs.dtype, art.ref_outputs.shape[1:])


def test_sine_int8_bit_exact_with_tflite_micro(sine_artifacts, build_host_model):
    art = sine_artifacts["int8"]
    out = _run_artifacts(build_host_model, art)
    assert out.dtype == np.int8
    mismatches = np.flatnonzero(out.reshape(len(out), -1) != art.ref_outputs.reshape(len(out), -1))
    assert mismatches.size == 0, f"{mismatches.size} of {out.size} outputs differ from TFLM"


def test_sine_int8_every_input_value_bit_exact(sine_artifacts, build_host_model):
    """All 256 possible int8 inputs, through TFLM and through the C code."""
    from farm.models.reference import run_tflm

    art = sine_artifacts["int8"]
    inputs = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    expected = run_tflm(art.tflite_path.read_bytes(), inputs)
    exe = build_host_model(art.tflite_path, name="sine", variant="int8")
    out = run_host_model(exe, inputs, np.int8, expected.shape[1:])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("variant", ["float32", "int8-weights"])
def test_sine_float_variants_match_tensorflow(sine_artifacts, build_host_model, variant):
    from farm.models.metrics import score

    art = sine_artifacts[variant]
    out = _run_artifacts(build_host_model, art)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, art.ref_outputs, rtol=0, atol=FLOAT_TOL)
    device_metric = score(art.metric, art.outputs_to_float(out), art.ground_truth)
    assert device_metric == pytest.approx(art.host_metric, abs=FLOAT_TOL)


def test_sine_int8_weights_runs_fused_int8_kernels(sine_artifacts, tmp_path):
    from farm.codegen import generate

    gen = generate(sine_artifacts["int8-weights"].tflite_path, tmp_path, name="sine", variant="int8-weights")
    assert gen.ops == ("fully_connected_f32_w8",) * 3
    assert gen.tflite_ops.count("DEQUANTIZE") == 3
    float_gen = generate(sine_artifacts["float32"].tflite_path, tmp_path / "f", name="sine", variant="float32")
    # int8 weights in flash: 288 weights x 1 byte instead of 4, plus one scale per output channel
    assert gen.const_bytes < float_gen.const_bytes


# --------------------------------------------------------------------------- #
# Randomized Dense stacks -> int8 (per-tensor and per-channel) -> bit-exact
# --------------------------------------------------------------------------- #

#: (seed, input width, [(units, activation), ...], batch)
STACKS = [
    (11, 1, [(16, "relu"), (16, "relu"), (1, None)], 1),
    (12, 7, [(24, "relu6"), (3, None)], 1),
    (13, 13, [(5, None), (32, "relu"), (9, "relu6"), (4, None)], 1),
    (14, 20, [(8, "relu6"), (8, "relu")], 2),
]


def _dense_stack(seed: int, width: int, layers: list[tuple[int, str | None]], batch: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input(shape=(width,), batch_size=batch)]
        + [keras.layers.Dense(units, activation=act,
                              bias_initializer=keras.initializers.RandomNormal(stddev=0.5))
           for units, act in layers])
    return model


@pytest.mark.parametrize("seed,width,layers,batch", STACKS, ids=[f"stack{s[0]}" for s in STACKS])
def test_random_dense_stacks_int8_bit_exact(seed, width, layers, batch, build_host_model, tmp_path):
    from farm.models.convert import to_float32, to_int8, to_int8_weights
    from farm.models.reference import run_tflite, run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    model = _dense_stack(seed, width, layers, batch)
    rng = np.random.default_rng(seed)
    # inputs in a range the calibration did not quite cover, so clamps are exercised too
    representative = rng.uniform(-2.0, 2.0, size=(64, batch, width)).astype(np.float32)
    inputs_float = rng.uniform(-2.5, 2.5, size=(100, batch, width)).astype(np.float32)

    for per_channel in (False, True):
        tflite = to_int8(model, representative, per_channel=per_channel)
        path = tmp_path / f"stack{seed}_{'pc' if per_channel else 'pt'}.tflite"
        path.write_bytes(tflite)
        graph = parse_tflite(tflite).main
        fcs = [op for op in graph.operators if op.opcode == "FULLY_CONNECTED"]
        assert len(fcs) == len(layers)
        weight_scales = {graph.tensors[op.inputs[1]].quant.scales.size for op in fcs}
        if not per_channel:
            assert weight_scales == {1}
        else:
            assert max(weight_scales) > 1 or all(units == 1 for units, _ in layers)
        activations = [op.options["fused_activation"] for op in fcs]
        assert activations == [{"relu": "RELU", "relu6": "RELU6", None: "NONE"}[a] for _, a in layers]

        x = graph.tensors[graph.inputs[0]]
        q_inputs = np.clip(np.round(inputs_float / x.quant.scale) + x.quant.zero_point, -128, 127).astype(np.int8)
        expected = run_tflm(tflite, q_inputs, batched=True)
        expected = expected.reshape(len(q_inputs), -1)
        exe = build_host_model(path, name=f"stack{seed}", variant="int8")
        out = run_host_model(exe, q_inputs, np.int8, expected.shape[1:])
        diff = np.flatnonzero(out != expected)
        assert diff.size == 0, (f"seed {seed} per_channel={per_channel}: {diff.size} of {out.size} "
                                f"outputs differ from TFLM (first at flat index {diff[0]})")

    # the float variants of the same stacks, against TensorFlow
    for variant, tflite in (("float32", to_float32(model)), ("int8-weights", to_int8_weights(model))):
        path = tmp_path / f"stack{seed}_{variant}.tflite"
        path.write_bytes(tflite)
        expected = run_tflite(tflite, inputs_float, batched=True)
        exe = build_host_model(path, name=f"stack{seed}", variant=variant)
        out = run_host_model(exe, inputs_float, np.float32, (expected.size // len(inputs_float),))
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(out, expected.reshape(out.shape), rtol=0, atol=FLOAT_TOL * scale,
                                   err_msg=f"seed {seed} {variant}")


def test_float_io_int8_model_quantize_dequantize_bit_exact(build_host_model, tmp_path):
    """Full-integer model with float I/O: QUANTIZE -> FC int8 -> DEQUANTIZE, all exact."""
    from farm.models.convert import to_int8
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    model = _dense_stack(21, 6, [(12, "relu"), (5, None)], 1)
    rng = np.random.default_rng(21)
    tflite = to_int8(model, rng.uniform(-1, 1, size=(64, 6)).astype(np.float32), int8_io=False)
    path = tmp_path / "float_io.tflite"
    path.write_bytes(tflite)
    graph = parse_tflite(tflite).main
    assert [op.opcode for op in graph.operators] == ["QUANTIZE", "FULLY_CONNECTED", "FULLY_CONNECTED",
                                                     "DEQUANTIZE"]
    q_scale = graph.tensors[graph.operators[0].outputs[0]].quant.scale
    # random values, values beyond the int8 range, and odd multiples of half a step
    # (rounding ties). Not values beyond int32 after scaling: TFLM's float->int32
    # cast is undefined there (x86 gives INT32_MIN, so -128; the kernel saturates).
    ties = (np.arange(-40, 40, dtype=np.float32) + np.float32(0.5)) * np.float32(q_scale)
    inputs = np.concatenate([rng.uniform(-1.5, 1.5, size=200).astype(np.float32),
                             np.array([0.0, -0.0, 1e3, -1e3, 3.0, -3.0], dtype=np.float32), ties])
    inputs = np.resize(inputs, (len(inputs) // 6, 6)).astype(np.float32)

    expected = run_tflm(tflite, inputs)
    exe = build_host_model(path, name="float_io", variant="int8")
    out = run_host_model(exe, inputs, np.float32, expected.shape[1:])
    np.testing.assert_array_equal(out, expected)
