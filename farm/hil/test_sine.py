"""HIL suite for the sine model: what the farm promises, asserted on measurements.

Each test runs once per device of the inventory. Measurements are made once per
session per (device, model, variant) and stored in the results database.
"""

from __future__ import annotations

import pytest

from farm.config.variants import FLOAT_OUTPUT_VARIANTS, VARIANTS
#: float variants on the device vs their host reference (float32 / int8-weights: TensorFlow;
#: dynamic: tf.lite.Interpreter with BUILTIN_REF), each variant's tolerance explained there
from farm.measure.job import OUTPUT_TOLERANCE


@pytest.mark.parametrize("variant", VARIANTS)
def test_runs_and_reports_labelled_figures(device, measure, variant):
    r = measure("sine", variant)
    assert r.status == "ok", f"{device.name} sine/{variant}: {r.status}: {r.message}"
    assert r.unit == device.unit
    assert r.count_median > 0 and r.latency_us > 0
    if device.is_emulated:  # QEMU counts instructions (latency an estimate); simavr cycles (not one)
        assert r.latency_is_estimate == (r.unit == "instructions")
    assert r.count_min <= r.count_median <= r.count_max
    assert r.energy_uj > 0 and r.energy_source


@pytest.mark.parametrize("variant", VARIANTS)
def test_fits_the_device(device, measure, variant):
    r = measure("sine", variant)
    assert 0 < r.flash_bytes <= device.flash_bytes
    assert 0 < r.ram_bytes <= device.ram_bytes


def test_int8_bit_exact_with_tflite_micro(device, measure):
    r = measure("sine", "int8")
    assert r.status == "ok", f"{device.name} sine/int8: {r.status}: {r.message}"
    assert r.bit_exact_fraction == 1.0, f"{device.name}: only {r.bit_exact_fraction:.1%} of outputs bit-exact"


def test_int8_device_accuracy_equals_host(device, measure):
    r = measure("sine", "int8")
    assert r.accuracy_device == pytest.approx(r.accuracy_host, abs=1e-12)


@pytest.mark.parametrize("variant", FLOAT_OUTPUT_VARIANTS)
def test_float_compute_matches_host_reference(device, measure, variant):
    r = measure("sine", variant)
    tolerance = OUTPUT_TOLERANCE[variant]
    assert r.max_abs_error <= tolerance, f"{device.name} sine/{variant}: max |error| {r.max_abs_error}"
    assert r.accuracy_device == pytest.approx(r.accuracy_host, abs=tolerance)


def test_int8_model_file_smaller_than_float32(device, measure):
    assert measure("sine", "int8").model_size_bytes < measure("sine", "float32").model_size_bytes
    assert measure("sine", "int8-weights").model_size_bytes < measure("sine", "float32").model_size_bytes
    # TensorFlow's dynamic-range quantizer leaves weight tensors under 1024 elements float, all of sine's:
    # its dynamic file is a float32 file (the same weights; only Keras' tensor names differ)
    dynamic, f32 = measure("sine", "dynamic").model_size_bytes, measure("sine", "float32").model_size_bytes
    assert abs(dynamic - f32) < 0.05 * f32, (dynamic, f32)


def test_int8_error_small(device, measure):
    """Quantization costs little accuracy: int8 MAE within 0.05 of float32's."""
    assert measure("sine", "int8").accuracy_device <= measure("sine", "float32").accuracy_device + 0.05


@pytest.mark.farm_select(fpu="none")
def test_int8_faster_than_float32_without_fpu(device, measure):
    int8 = measure("sine", "int8")
    f32 = measure("sine", "float32")
    assert int8.count_median < f32.count_median, (
        f"{device.name}: int8 {int8.count_median:.0f} vs float32 {f32.count_median:.0f} {int8.unit}")


def test_energy_follows_count(device, measure):
    """The power model's energy is proportional to the count: same energy per unit count."""
    a, b = measure("sine", "int8"), measure("sine", "float32")
    for r in (a, b):
        assert r.status == "ok", f"{device.name} sine/{r.variant}: {r.status}: {r.message}"
    assert a.energy_uj / a.count_median == pytest.approx(b.energy_uj / b.count_median, rel=1e-9)
