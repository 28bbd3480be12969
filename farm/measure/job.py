"""Glue of the pipeline: one (device, model, variant) -> one stored-ready ResultRecord.

model artifacts -> generated C -> firmware ELF -> preflight (sizes, portability
scan of the ELF for the device's core) -> board -> timing + outputs -> comparison
with the host reference -> energy. Every failure becomes a status with a sentence
(does-not-fit, not-portable, faulted, hung, error); nothing here raises for a
board problem, so a run goes on with the next board.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import farm
from farm import codegen
from farm.board.registry import open_board
from farm.preflight.elfinfo import elf_sizes, file_sha256
from farm.board.qemu import EmulatorError
from farm.power.energy import EnergyError, PowerMonitorNotImplementedError, energy_per_inference
from farm.board.faults import decode_fault
from farm.board.infra import INFRA_STATUS, InfraError
from farm.power.capture import energy_window
from farm.build.firmware import BuildTarget, FirmwareBuild, FirmwareBuildError, _locked, build_firmware
from farm.config.machine_flags import machine_flags
from farm.models.native_output import native_output_to
from farm.measure.timing import MeasurePlan, collect_outputs, measure_timing
from farm.models import ModelArtifacts, build_variant
from farm.models.metrics import score
from farm.preflight.portability import PortabilityError, PortabilityReport, check_device, lacking_instruction_at
from farm.store.results import ResultRecord
from farm.board.session import DeviceFault, DeviceHung, DeviceRefused

Progress = Callable[[str], None]

#: float32 / int8-weights outputs must match the host float reference within this
#: absolute tolerance (the device computes in float32 like the host; differences
#: come from summation order and libm).
FLOAT_TOLERANCE = 1e-4


class DoesNotFit(RuntimeError):
    """The ELF needs more flash or RAM than the device has."""


class NotPortable(DoesNotFit):
    """The ELF uses what the device's core lacks (FPU, DSP, ...) or breaks a
    variant's rule (an int8 build that is not float-free). Like DoesNotFit, the
    build is refused before flashing (callers that catch DoesNotFit refuse it too)."""

    def __init__(self, message: str, report: PortabilityReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class PreparedFirmware:
    generated: Any  # codegen.GeneratedModel
    build: FirmwareBuild
    flash_bytes: int
    ram_bytes: int


def _quiet(_: str) -> None:
    pass


def target_for(device: Any) -> BuildTarget:
    return BuildTarget(device.board, machine_flags(device.core, device.fpu, device.dsp),
                       getattr(device, "platform", None))


def prepare_firmware(tflite: Path, name: str, variant: str, device: Any, state: Path,
                     target: BuildTarget | None = None, kernels: str = "optimized") -> PreparedFirmware:
    """Generate C for the model and build it for the device (both cached).

    ``kernels``: the code generator's kernel set ("optimized", or "reference" for
    the plain reference kernels only; farm.codegen.lowering.KERNEL_SETS)."""
    codegen.check_supported(tflite)
    digest = hashlib.sha256(tflite.read_bytes()).hexdigest()[:20]
    suffix = "" if kernels == "optimized" else f"-{kernels}"
    gen_dir = state / "generated" / f"{name}-{variant}-{digest}{suffix}"
    # Runs may share the state folder (two nightlies at once): generate into a folder of
    # this process's own, and replace and build from the shared one under a lock.
    tmp = gen_dir.with_name(f"{gen_dir.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generated = codegen.generate(tflite, tmp, name=name, variant=variant, kernels=kernels)
    try:
        with _locked(gen_dir.with_name(f".{gen_dir.name}.lock")):
            if gen_dir.exists():
                shutil.rmtree(gen_dir)
            tmp.rename(gen_dir)
            build = build_firmware(gen_dir, target or target_for(device), state)
    except FirmwareBuildError as exc:
        overflow = _linker_overflow(str(exc), device)
        if overflow:
            raise DoesNotFit(overflow) from None
        raise
    sizes = elf_sizes(build.elf)
    return PreparedFirmware(generated, build, sizes.flash_bytes, sizes.ram_bytes)


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def _linker_overflow(log: str, device: Any) -> str | None:
    """The linker's "region `RAM' overflowed by N bytes" as a does-not-fit sentence."""
    found = {name: int(n) for name, n in _OVERFLOW.findall(log)}
    if not found:
        return None
    sizes = {"FLASH": ("flash", device.flash_bytes), "RAM": ("RAM", device.ram_bytes)}
    parts = []
    for region, over in found.items():
        what, have = sizes.get(region, (region, None))
        if have is not None:
            parts.append(f"{what}: needs {have + over} bytes, {device.name} has {have} (refused by the linker)")
        else:
            parts.append(f"{what}: {over} bytes too many (refused by the linker)")
    return "; ".join(parts)


def check_portable(device: Any, fw: PreparedFirmware, variant: str) -> PortabilityReport:
    """The static portability scan of the ELF for the device's core; raises NotPortable."""
    report = check_device(fw.build.elf, device, variant)
    if not report.portable:
        raise NotPortable(report.summary(), report)
    return report


def fault_status(exc: DeviceFault, device: Any, elf: Path | None) -> tuple[str, str]:
    """(status, message) for a fault the board reported: "not-portable" when it
    shows that the build uses what the core lacks (NOCP: an FPU instruction; an
    undefined/illegal instruction that the static check knows the core lacks),
    "faulted" otherwise (a deliberate udf, a bad pointer, ...)."""
    report = decode_fault(exc.words, elf, device.fpu != "none")
    if "NOCP" in report.kind or report.kind == "trap 2 FPU":
        return "not-portable", f"faulted on the board: {report.sentence}"
    if elf is not None and ("UNDEFINSTR" in report.kind or report.kind == "trap 2"):
        why = lacking_instruction_at(elf, report.pc, core=str(device.core), fpu=str(device.fpu),
                                     dsp=bool(device.dsp))
        if why:
            return "not-portable", f"faulted on the board: {report.sentence} ({why})"
    return "faulted", report.sentence


def check_fits(device: Any, fw: PreparedFirmware) -> None:
    problems = []
    if fw.flash_bytes > device.flash_bytes:
        problems.append(f"flash: needs {fw.flash_bytes} bytes, {device.name} has {device.flash_bytes}")
    if fw.ram_bytes > device.ram_bytes:
        problems.append(f"RAM: needs {fw.ram_bytes} bytes, {device.name} has {device.ram_bytes}")
    if problems:
        raise DoesNotFit("; ".join(problems))


def _base_record(device: Any, model: str, variant: str) -> ResultRecord:
    return ResultRecord(device=device.name, model=model, variant=variant, status="error",
                        unit=device.unit, farm_version=farm.__version__,
                        created_at=dt.datetime.now(dt.timezone.utc),
                        host=getattr(getattr(device, "serial", None), "host", None))


def compare_outputs(art: ModelArtifacts, device_out: np.ndarray) -> tuple[float, float]:
    """(fraction of samples bit-exact with the reference, max abs error in float units)."""
    ref = art.ref_outputs
    exact = np.all(device_out.reshape(len(ref), -1) == ref.reshape(len(ref), -1), axis=1)
    dev_f = art.outputs_to_float(device_out).astype(np.float64)
    ref_f = art.outputs_to_float(ref).astype(np.float64)
    return float(exact.mean()), float(np.max(np.abs(dev_f - ref_f))) if ref.size else 0.0


def measure_one(device: Any, model: str, variant: str, *, state: Path, plan: MeasurePlan | None = None,
                progress: Progress = _quiet, target: BuildTarget | None = None,
                preflight: bool = True, kernels: str = "optimized") -> ResultRecord:
    """Measure one model variant on one device; never raises for a board problem.

    ``kernels`` picks the code generator's kernel set (prepare_firmware); it is
    recorded in the result's details.

    ``target`` builds with explicit flags instead of the device's capability model
    and ``preflight=False`` skips the size and portability checks: only for tests
    that must put a non-portable build on a board to see how it fails there.
    """
    record = _base_record(device, model, variant)
    fw: PreparedFirmware | None = None
    try:
        progress(f"{device.name}: model {model}/{variant}")
        with native_output_to(state / "logs" / "tensorflow.log"):
            art = build_variant(model, variant, state / "models")
        # the caller's plan, else the model's own (a slow model runs fewer, shorter windows)
        plan = plan or MeasurePlan(**art.measure_plan)
        record.model_size_bytes = art.size_bytes
        record.model_sha256 = art.sha256
        record.metric = art.metric
        record.accuracy_host = art.host_metric
        progress(f"{device.name}: firmware for {model}/{variant}")
        fw = prepare_firmware(art.tflite_path, model, variant, device, state, target, kernels)
        record.flash_bytes, record.ram_bytes = fw.flash_bytes, fw.ram_bytes
        record.elf_sha256 = file_sha256(fw.build.elf)
        record.compiler, record.compiler_flags = fw.build.compiler, fw.build.compiler_flags
        record.details = {"firmware_cached": fw.build.cached, "build_seconds": round(fw.build.build_seconds, 3),
                          "float_abi": fw.build.float_abi, "kernels": kernels}
        if preflight:
            check_fits(device, fw)
            progress(f"{device.name}: portability check of {model}/{variant}")
            record.details["float_kind"] = check_portable(device, fw, variant).float_kind
        progress(f"{device.name}: flashing and measuring {model}/{variant}")
        with open_board(device, fw.build.elf, state / "logs") as board:
            record.unit = board.unit
            board.session.timeout = plan.request_timeout
            sample = np.ascontiguousarray(art.test_inputs[0]).tobytes()
            timing = measure_timing(board.session, sample, plan, board.unit, board.convert,
                                    timeout_per_inference=plan.inference_timeout)
            outputs = collect_outputs(board.session, art.test_inputs, tuple(art.ref_outputs.shape[1:]),
                                      art.ref_outputs.dtype, timeout=plan.inference_timeout)
            # a measuring power monitor (PPK2, Joulescope) records while the board runs inferences
            energy = energy_per_inference(device, timing.median, board.unit,
                                          run=lambda: energy_window(board.session, board.identity,
                                                                    timeout=plan.inference_timeout * 64))
        record.count_median = timing.median
        record.count_min, record.count_max = timing.minimum, timing.maximum
        record.windows = len(timing.window_counts)
        record.window_counts = [float(c) for c in timing.window_counts]
        record.latency_us = timing.median / device.clock_hz * 1e6
        record.latency_is_estimate = board.unit != "cycles"
        if energy is not None:  # no power monitor declared: no energy figure, not a made-up one
            record.energy_uj, record.energy_source = energy.energy_uj, energy.source
        record.bit_exact_fraction, record.max_abs_error = compare_outputs(art, outputs)
        # the same dequantization and scoring as the host metric, so bit-exact outputs
        # give exactly the host's figure
        record.accuracy_device = score(art.metric, art.outputs_to_float(outputs), art.ground_truth)
        record.status = "ok"
        notes = []
        if timing.rejected:
            notes.append(f"rejected outlier windows: {timing.rejected}")
        if art.latency_only:
            notes.append("latency-only model (trained on generated data; accuracy not meaningful)")
            record.details["latency_only"] = True
        if board.identity.get("timer") == "micros":  # the Arduino layer without a cycle counter
            notes.append("cycles scaled from a 1 MHz micros() timer (the core has no cycle counter): coarse")
        record.message = "; ".join(notes) or None
    except InfraError as exc:  # the farm could not use the board: not a verdict on the firmware
        record.status, record.message = INFRA_STATUS, str(exc)
        record.details = {**(record.details or {}), "infra": type(exc).__name__, "quarantine": exc.quarantine}
    except NotPortable as exc:
        record.status, record.message = "not-portable", str(exc)
    except DoesNotFit as exc:
        record.status, record.message = "does-not-fit", str(exc)
    except DeviceFault as exc:
        record.status, record.message = fault_status(exc, device, fw.build.elf if fw else None)
    except DeviceHung as exc:
        record.status, record.message = "hung", f"{device.name} stopped answering: {exc}"
    except (DeviceRefused, FirmwareBuildError, EmulatorError, codegen.CodegenError,
            PowerMonitorNotImplementedError, EnergyError, PortabilityError) as exc:
        record.status, record.message = "error", str(exc)
    return record


def infer(tflite: Path, device: Any, inputs: np.ndarray, *, state: Path,
          progress: Progress = _quiet, kernels: str = "optimized") -> np.ndarray:
    """Bring-your-own-model: run every sample of ``inputs`` on the device, return outputs.

    ``inputs`` holds samples along axis 0, each shaped like the model input with or
    without its leading batch dimension of 1. Raises on failure (the CLI reports it).
    """
    codegen.check_supported(tflite)
    variant = "user"
    progress(f"{device.name}: generating and building {tflite.name}")
    fw = prepare_firmware(tflite, tflite.stem, variant, device, state, kernels=kernels)
    check_fits(device, fw)
    check_portable(device, fw, variant)
    gen = fw.generated
    in_shape = tuple(gen.input_shape)
    in_dtype = np.dtype(gen.input_dtype)
    samples = _as_samples(inputs, in_shape, in_dtype)
    out_shape = tuple(gen.output_shape)
    with open_board(device, fw.build.elf, state / "logs") as board:
        progress(f"{device.name}: running {len(samples)} samples")
        try:
            outputs = collect_outputs(board.session, samples, out_shape, np.dtype(gen.output_dtype), timeout=60.0)
        except DeviceFault as exc:
            raise DeviceRefused(fault_status(exc, device, fw.build.elf)[1]) from None
    if inputs.ndim == len(in_shape) + 1 and in_shape and in_shape[0] == 1 and out_shape and out_shape[0] == 1:
        return outputs  # samples kept their batch dimension: keep it on the outputs too
    return outputs.reshape(len(samples), *out_shape[1:]) if out_shape and out_shape[0] == 1 else outputs


def _as_samples(inputs: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if inputs.dtype != dtype:
        raise ValueError(f"input dtype is {inputs.dtype}, the model input is {dtype}")
    batchless = shape[1:] if shape and shape[0] == 1 else shape
    if tuple(inputs.shape[1:]) == shape:
        return inputs
    if tuple(inputs.shape[1:]) == batchless:
        return inputs.reshape(len(inputs), *shape)
    raise ValueError(
        f"input samples have shape {tuple(inputs.shape[1:])}; the model input is {shape} "
        f"(samples go along the first axis, with or without the batch dimension of 1)"
    )
