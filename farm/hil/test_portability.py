"""HIL suite: portability of every active model (the project's and the zoo's), in every variant it
declares, to every board of the inventory.

Static checks of the very ELF that would be flashed (built with the flags of the
device's capability model): int8 builds contain no floating point on their
inference path; float builds on FPU-less cores are soft-float, and no build uses
an instruction its core lacks. One test runs the matrix cell on the board too, so
the nightly's portability verdict is confirmed by execution (or decoded when not).
"""

from __future__ import annotations

from typing import Any

import pytest

from farm.models import list_models
from farm.models.sources import model_variants
from farm.project.current import current_project
from farm.pytest_plugin.params import over

PROJECT = current_project()
MODELS = list_models()


def _variants(model: str) -> tuple[str, ...]:
    """The variants ``model`` declares (the project file's ``variants:``; a zoo model: all four)."""
    return PROJECT.variants_of(model) if PROJECT is not None else model_variants(model)


def _with(variant: str) -> list[str]:
    return [m for m in MODELS if variant in _variants(m)]


def _pairs(variants: Any = None) -> list[Any]:
    """(model, variant) parameters, ids ``model-variant``, narrowed to ``variants``."""
    return [pytest.param(m, v, id=f"{m}-{v}") for m in MODELS for v in _variants(m)
            if variants is None or v in variants]


def _check(device: Any, static_portability: Any, model: str, variant: str) -> Any:
    """The static portability report of the (model, variant) build for the device (made once per
    night: on the cluster's host-only prepare job, or here); skips what does not fit."""
    check = static_portability(model, variant)
    if check.does_not_fit is not None:
        pytest.skip(f"{model}/{variant} does not fit {device.name}: {check.does_not_fit}")
    return check.report


@over("model", _with("int8"))
def test_int8_build_is_float_free(device, static_portability, model):
    report = _check(device, static_portability, model, "int8")
    assert report.float_free, f"{device.name} {model}/int8: {report.summary()}"
    assert report.portable, report.summary()


@over("model,variant", _pairs(("float32", "dynamic")))
@pytest.mark.farm_select(fpu="none")
def test_float_builds_without_fpu_are_soft_float(device, static_portability, model, variant):
    """float32, and dynamic range (its input quantization and float rescale): soft-float, allowed."""
    report = _check(device, static_portability, model, variant)
    assert report.portable, report.summary()
    assert not report.fpu_instructions, f"{device.name} {model}/{variant} has FPU instructions: {report.summary()}"
    assert report.float_kind == "soft-float" and report.softfloat_call_sites > 0, report.summary()
    assert report.elf_float_abi == "soft"


@over("model", _with("dynamic"))
@pytest.mark.farm_select(fpu="sp")
def test_dynamic_with_fpu_is_hard_float(device, static_portability, model):
    """On a core with a single-precision FPU the dynamic build's float parts run on it (hard-float
    ABI, FPU instructions on the inference path); the double-precision steps TensorFlow Lite's
    asymmetric input quantization takes, if any, stay libgcc calls on it."""
    report = _check(device, static_portability, model, "dynamic")
    assert report.portable, report.summary()
    assert report.fpu_instructions and report.float_kind in ("hard-float", "hard+soft-float"), report.summary()
    assert report.elf_float_abi == "hard"


@over("model,variant", _pairs())
def test_no_instruction_the_core_lacks(device, static_portability, model, variant):
    report = _check(device, static_portability, model, variant)
    assert report.portable, f"{device.name} {model}/{variant}: {report.summary()}"


@over("model,variant", _pairs())
def test_portability_matrix_cell_runs(device, portability, model, variant):
    """The `farm portability` cell: static checks, then one inference on the board (on the
    nightly's cluster: a board job on the worker serving the board)."""
    cell = portability(model, variant)
    if cell.status == "does-not-fit":
        pytest.skip(cell.reason)
    if cell.status == "portable" and cell.checked == "static":
        pytest.skip(f"passes the static checks; not run: {cell.reason}")  # no driver for this board yet
    assert cell.status == "runs", f"{device.name} {model}/{variant}: {cell.status}: {cell.reason}"
    if variant != "int8" and device.fpu == "none" and device.is_emulated:
        from farm.measure.portability_matrix import SOFTFLOAT_TRACE_MAX_MACS

        assert cell.softfloat_call_sites and cell.softfloat_call_sites > 0, cell.reason
        if device.emulator.kind != "qemu":  # counted from QEMU's trace only: said so, not guessed
            assert cell.softfloat_calls_per_inference is None and "not counted" in cell.reason, cell.reason
        elif cell.macs is not None and cell.macs <= SOFTFLOAT_TRACE_MAX_MACS:
            assert cell.softfloat_calls_per_inference and cell.softfloat_calls_per_inference > 0, cell.reason
        else:  # over the trace budget: said so, not guessed
            assert cell.softfloat_calls_per_inference is None
            assert "not counted" in cell.reason and "trace budget" in cell.reason, cell.reason
