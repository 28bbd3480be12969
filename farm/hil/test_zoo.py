"""HIL suite for the active models: the project's own and the zoo's (digits, the MLPerf Tiny
architectures), on every board.

Every active model (farm.models.list_models: the project's models and the zoo examples it
includes; without a project, the zoo) in every variant it declares, on each device of the
inventory: int8 bit-exact with tflite-micro on every test sample, float32 and int8-weights
within FLOAT_TOLERANCE of TensorFlow, dynamic (hybrid ops) within DYNAMIC_TOLERANCE of
tf.lite.Interpreter's BUILTIN_REF kernels (farm.measure.job.OUTPUT_TOLERANCE), the
device's int8 accuracy equal to the host's. A build too big for a board (the 16 KiB
sifive_e, mostly) is refused before flashing with its numbers: the fit test checks that
verdict, and the tests that need a measurement skip with it as the reason (never silently).

Those are the farm's promises for any model. What only holds for the zoo's own recipes —
digits' real-data accuracy, the seed's size and speed thesis on their architectures — stays
zoo-only: a project's models are judged by their budgets (test_budgets.py).

Each model runs with its own measurement plan (few samples and short timed windows for the
big ones, see the recipes), so the whole zoo stays within minutes on the emulators. Select
models with ``FARM_MODELS`` (or ``-k``).
"""

from __future__ import annotations

from typing import Any

import pytest

from farm.config.variants import FLOAT_OUTPUT_VARIANTS
from farm.measure.job import OUTPUT_TOLERANCE
from farm.models import get_recipe, list_models
from farm.models.sources import model_variants
from farm.project.current import current_project
from farm.pytest_plugin.params import over
from farm.project.file import zoo_models

PROJECT = current_project()


def _variants(model: str) -> tuple[str, ...]:
    """The variants ``model`` declares (the project file's ``variants:``; a zoo model: all four)."""
    return PROJECT.variants_of(model) if PROJECT is not None else model_variants(model)


#: every active model but the zoo's sine (it has its own file, test_sine.py)
MODELS = [m for m in list_models() if m != "sine"]
#: the zoo's own recipes among them: the rules that hold for the zoo only
ZOO = [m for m in MODELS if m in zoo_models()]
PAIRS = [(m, v) for m in MODELS for v in _variants(m)]


def _pairs(variants: Any = None, models: Any = None) -> list[Any]:
    """(model, variant) parameters, ids ``model-variant``, narrowed to these variants / models."""
    return [pytest.param(m, v, id=f"{m}-{v}") for m, v in PAIRS
            if (variants is None or v in variants) and (models is None or m in models)]


def _with(*variants: str, models: Any = None) -> list[str]:
    """The models (of ``models``, default all) that declare every one of ``variants``."""
    return [m for m in (MODELS if models is None else models) if set(variants) <= set(_variants(m))]


def _measured(measure: Any, device: Any, model: str, variant: str) -> Any:
    """The result; skips (with the verdict) when the build does not fit the device."""
    r = measure(model, variant)
    if r.status == "does-not-fit":
        pytest.skip(f"{model}/{variant} does not fit {device.name}: {r.message}")
    assert r.status == "ok", f"{device.name} {model}/{variant}: {r.status}: {r.message}"
    return r


@over("model,variant", _pairs())
def test_runs_or_is_refused_with_the_numbers(device, measure, model, variant):
    r = measure(model, variant)
    if r.status == "does-not-fit":  # a verdict, with the numbers: the ELF's needs against the board's
        assert "bytes" in r.message and device.name in r.message, r.message
        needs = [n for n in (r.flash_bytes, r.ram_bytes) if n]
        assert not needs or r.flash_bytes > device.flash_bytes or r.ram_bytes > device.ram_bytes, r.message
        return
    assert r.status == "ok", f"{device.name} {model}/{variant}: {r.status}: {r.message}"
    assert r.unit == device.unit and r.count_median > 0 and r.latency_us > 0
    assert r.count_min <= r.count_median <= r.count_max
    if device.is_emulated:  # QEMU counts instructions (latency an estimate); simavr cycles (not one)
        assert r.latency_is_estimate == (r.unit == "instructions")
    assert 0 < r.flash_bytes <= device.flash_bytes and 0 < r.ram_bytes <= device.ram_bytes
    if get_recipe(model).latency_only:  # every report says the accuracy is not meaningful
        assert "latency-only" in (r.message or ""), r.message


@over("model", _with("int8"))
def test_int8_bit_exact_with_tflite_micro(device, measure, model):
    r = _measured(measure, device, model, "int8")
    assert r.bit_exact_fraction == 1.0, f"{device.name} {model}: only {r.bit_exact_fraction:.1%} of samples bit-exact"


@over("model", _with("int8"))
def test_int8_device_accuracy_equals_host(device, measure, model):
    r = _measured(measure, device, model, "int8")
    assert r.accuracy_device == pytest.approx(r.accuracy_host, abs=1e-12)


@over("model,variant", _pairs(FLOAT_OUTPUT_VARIANTS))
def test_float_variants_within_tolerance(device, measure, model, variant):
    r = _measured(measure, device, model, variant)
    tolerance = OUTPUT_TOLERANCE[variant]
    assert r.max_abs_error <= tolerance, f"{device.name} {model}/{variant}: max |error| {r.max_abs_error}"
    metric_tolerance = 1e-9 if r.metric == "accuracy" else tolerance  # argmax of near-identical outputs
    assert r.accuracy_device == pytest.approx(r.accuracy_host, abs=metric_tolerance)


@over("model", [m for m in ZOO if not get_recipe(m).latency_only])
def test_real_data_accuracy(device, measure, model):
    """The zoo's digits is trained on real data: its accuracy means something, on the device too
    (a project's model sets its own floor: budgets.accuracy_min)."""
    for variant in _variants(model):
        r = _measured(measure, device, model, variant)
        assert r.accuracy_device >= 0.9, f"{device.name} {model}/{variant}: accuracy {r.accuracy_device:.3f}"


@over("model", _with("int8", "dynamic", "float32", models=ZOO))
def test_int8_model_file_smaller_than_float32(device, measure, model):
    assert measure(model, "int8").model_size_bytes < measure(model, "float32").model_size_bytes
    # every zoo model but sine has weight tensors of 1024 elements or more, which dynamic range quantizes
    assert measure(model, "dynamic").model_size_bytes < measure(model, "float32").model_size_bytes


@over("model", _with("int8", "float32", models=ZOO))
@pytest.mark.farm_select(fpu="none")
def test_int8_faster_than_float32_without_fpu(device, measure, model):
    int8 = _measured(measure, device, model, "int8")
    f32 = _measured(measure, device, model, "float32")
    assert int8.count_median < f32.count_median, (
        f"{device.name} {model}: int8 {int8.count_median:.0f} vs float32 {f32.count_median:.0f} {int8.unit}")
