"""The job: one (device, model, variant) through every stage, with one map from failures to statuses.

model artifacts -> prepare firmware (generated C, ELF; farm.build.prepare) -> fits
-> portability scan (farm.preflight.checks) -> open_board, under the device's lease
-> the caller's board work -> status. :func:`run_job` is that sequence, for every
command that puts a model on a board: ``farm run`` and the nightly
(:func:`measure_one`), ``farm portability`` (farm.measure.portability_matrix.portability_cell),
``farm profile`` (farm.measure.profile.profile_one) and ``farm infer`` (:func:`infer`).

Every failure becomes a status with a sentence by :func:`status_of` (does-not-fit,
not-portable, faulted, hung, error, infra-error); nothing here raises for a board
problem, so a run goes on with the next board. Two things do propagate: a device
that another run holds or that is quarantined (DeviceBusy, DeviceQuarantined: the
caller reports it skipped), and an exception the map does not know (a bug).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import farm
from farm import codegen
from farm.board.driver import BoardConnection
from farm.board.infra import InfraError
from farm.board.leases import DeviceBusy, DeviceQuarantined, LeasePolicy, hold
from farm.board.qemu import EmulatorError
from farm.board.registry import open_board
from farm.board.session import DeviceFault, DeviceHung, DeviceRefused
from farm.build.elf import file_sha256
from farm.build.firmware import BuildTarget, FirmwareBuildError
from farm.build.prepare import PreparedFirmware, prepare_firmware
from farm.measure.timing import MeasurePlan, TimingResult, collect_outputs, measure_timing
from farm.models import ModelArtifacts, build_variant
from farm.models.convert import ConversionError
from farm.models.metrics import MetricError, score
from farm.models.sources import ModelSourceError
from farm.models.user_tflite import UserModelError
from farm.models.native_output import native_output_to
from farm.power.capture import energy_window
from farm.power.energy import EnergyError, PowerMonitorNotImplementedError, energy_per_inference
from farm.build.fits import DoesNotFit, check_fits
from farm.measure.fault_verdict import fault_status
from farm.preflight.checks import NotPortable, check_portable
from farm.preflight.portability import PortabilityError, PortabilityReport
from farm.store.results import ResultRecord
from farm.store.status import CellStatus, Status, Unit

Progress = Callable[[str], None]

#: float32 / int8-weights outputs must match the host float reference within this
#: absolute tolerance (the device computes in float32 like the host; differences
#: come from summation order and libm).
FLOAT_TOLERANCE = 1e-4

#: dynamic (hybrid) outputs must match tf.lite.Interpreter with BUILTIN_REF within this
#: absolute tolerance. The device quantizes each op's input per batch exactly as the host
#: does (the same float min/max and scale, the same rounding), the int8 x int8 products
#: accumulate exactly in int32, so the only differences can come from the float rescale
#: (accumulator x input scale x weight scale), the bias addition and the activation: a few
#: IEEE-754 roundings, identical on any core unless a compiler orders or contracts one of
#: them differently, which moves an output by a few ulps. 1e-4 is more than 3 ulps of any
#: output below 256 in magnitude (1 ulp at 256 is 3.1e-5), and far below what one int8 step
#: of a quantized input moves an output (input range / 255 x a weight), so a device that
#: quantizes differently from TensorFlow Lite fails. Expected, and measured on the sine
#: and the hybrid test models: 0 or a few ulps.
DYNAMIC_TOLERANCE = 1e-4

#: the tolerance of each variant with float outputs (int8: bit-exact with tflite-micro, no tolerance)
OUTPUT_TOLERANCE: dict[str, float] = {
    "float32": FLOAT_TOLERANCE,
    "int8-weights": FLOAT_TOLERANCE,
    "dynamic": DYNAMIC_TOLERANCE,
}


def _quiet(_: str) -> None:
    pass


def elf_code_and_graph(elf: Path) -> tuple[Any, Any]:
    """An ELF's disassembly and call graph (farm.preflight): what the build needs to size the
    stack from its static bound (farm.build.firmware.build_firmware's code_reader)."""
    from farm.preflight.call_graph import call_graph
    from farm.preflight.disassembly import read_elf_code

    code = read_elf_code(elf)
    return code, call_graph(code)


# --------------------------------------------------------------------------- the one map


#: failures that are "error": the farm could not build or run the job (not a board verdict) -- a
#: model that cannot be converted or whose data cannot be used is one (its sentence names the
#: model, the converter step or the data file)
ERRORS: tuple[type[Exception], ...] = (DeviceRefused, FirmwareBuildError, EmulatorError, codegen.CodegenError,
                                       PowerMonitorNotImplementedError, EnergyError, PortabilityError,
                                       ConversionError, ModelSourceError, UserModelError, MetricError)


def status_of(exc: BaseException, device: Any, elf: Path | None) -> tuple[Status, str] | None:
    """The job's status and sentence for a failure; None for what the job does not report
    (DeviceBusy / DeviceQuarantined: the caller skips the device; anything unknown: a bug).

    Checked in this order: InfraError (the farm could not use the board: no verdict on the
    firmware) -> NotPortable -> DoesNotFit (NotPortable is one) -> DeviceFault (decoded:
    not-portable or faulted) -> DeviceHung -> the build/run errors of :data:`ERRORS`."""
    if isinstance(exc, (DeviceBusy, DeviceQuarantined)):
        return None
    if isinstance(exc, InfraError):
        return Status.INFRA_ERROR, str(exc)
    if isinstance(exc, NotPortable):
        return Status.NOT_PORTABLE, str(exc)
    if isinstance(exc, DoesNotFit):
        return Status.DOES_NOT_FIT, str(exc)
    if isinstance(exc, DeviceFault):
        return fault_status(exc, device, elf)
    if isinstance(exc, DeviceHung):
        return Status.HUNG, f"{device.name} stopped answering: {exc}"
    if isinstance(exc, ERRORS):
        return Status.ERROR, str(exc)
    return None


def failure_details(exc: BaseException) -> dict[str, Any]:
    """What a result records of a failure besides its sentence: an infrastructure failure's
    kind and whether the board is to be quarantined."""
    if isinstance(exc, InfraError):
        return {"infra": type(exc).__name__, "quarantine": exc.quarantine}
    return {}


def cell_status(status: Status) -> CellStatus:
    """A failed job's status as a portability-matrix cell's (the same words)."""
    return CellStatus(status.value)


# --------------------------------------------------------------------------- the sequence


class Board(enum.Enum):
    """What the job does with the device once the build passed its checks."""

    NONE = "none"  # nothing: the static checks are the job (farm portability --static-only)
    OPEN = "open"  # open_board and run the work on it (a device no driver reaches: NotImplementedError)
    IF_DRIVER = "if-driver"  # the same; a device no driver reaches is checked statically only
    LEASE = "lease"  # hold the device's lease; the work brings up its own emulators (farm profile)


@dataclass
class Job:
    """What the stages of one job produced, and how it ended (status OK: every stage passed)."""

    device: Any
    model: str
    variant: str
    art: ModelArtifacts | None = None
    firmware: PreparedFirmware | None = None
    portability: PortabilityReport | None = None  # the scan's report, portable or not
    on_board: bool = False  # the board was opened (or its lease held, Board.LEASE)
    no_driver: str | None = None  # Board.IF_DRIVER: why the board was not tried
    status: Status = Status.OK
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # of the failure (failure_details)
    error: Exception | None = None  # the failure (status_of), kept to re-raise

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def elf(self) -> Path | None:
        return self.firmware.build.elf if self.firmware else None

    def fail(self, exc: Exception) -> None:
        """Record ``exc`` by the one map; re-raises what the map does not report."""
        found = status_of(exc, self.device, self.elf)
        if found is None:
            raise exc
        self.status, self.message = found
        self.details = failure_details(exc)
        self.error = exc

    def raise_error(self) -> None:
        """Re-raise the failure (for callers that report exceptions: farm infer, farm profile)."""
        if self.error is not None:
            raise self.error


#: the caller's work on the board (None under Board.LEASE), with what the stages made
BoardWork = Callable[[Job, BoardConnection | None], None]
#: the caller's step after the board is given back (still under the map)
AfterBoard = Callable[[Job], None]


def run_job(device: Any, model: str, variant: str, *, state: Path, work: BoardWork | None = None,
            board: Board = Board.OPEN, tflite: Path | None = None, art: ModelArtifacts | None = None,
            target: BuildTarget | None = None,
            kernels: str = "optimized", fits: bool = True, portable: bool = True,
            ready: Callable[[Job], None] | None = None, after_board: AfterBoard | None = None,
            doing: str = "flashing and measuring", lease: LeasePolicy | None = None,
            progress: Progress = _quiet) -> Job:
    """One job through every stage; see the module docstring. Never raises for a build,
    a check or a board problem: the returned Job carries the status and sentence.

    ``tflite``: a user's model (farm infer) instead of the zoo's ``model``/``variant``
    (no model artifacts). ``art``: artifacts already made (a user's .tflite measured like a
    zoo model: farm.models.user_tflite) instead of the zoo's. ``fits`` / ``portable``: run
    the size check and the portability scan. ``ready(job)`` runs after the checks, before the board (an
    exception the map does not know propagates: the caller's own refusal).
    ``work(job, board)`` runs with the board up; ``after_board(job)`` once it is
    released. ``lease``: the policy open_board takes the device's lease under.
    """
    job = Job(device, model, variant)
    try:
        _stages(job, state=state, work=work, board=board, tflite=tflite, art=art, target=target, kernels=kernels,
                fits=fits, portable=portable, ready=ready, after_board=after_board, doing=doing,
                lease=lease, progress=progress)
    except (DeviceBusy, DeviceQuarantined):
        raise
    except Exception as exc:  # the one map; what it does not know propagates
        job.fail(exc)
    return job


def _stages(job: Job, *, state: Path, work: BoardWork | None, board: Board, tflite: Path | None,
            art: ModelArtifacts | None, target: BuildTarget | None, kernels: str, fits: bool, portable: bool,
            ready: Callable[[Job], None] | None, after_board: AfterBoard | None, doing: str,
            lease: LeasePolicy | None, progress: Progress) -> None:
    device, model, variant = job.device, job.model, job.variant
    if art is not None:
        job.art = art
        tflite = art.tflite_path
    if tflite is None:
        progress(f"{device.name}: model {model}/{variant}")
        with native_output_to(state / "logs" / "tensorflow.log"):
            job.art = build_variant(model, variant, state / "models")
        tflite = job.art.tflite_path
    progress(f"{device.name}: firmware for {model}/{variant}")
    job.firmware = prepare_firmware(tflite, model, variant, device, state, target, kernels,
                                    code_reader=elf_code_and_graph)
    elf = job.firmware.build.elf
    if fits:
        check_fits(device, job.firmware)
    if portable:
        progress(f"{device.name}: portability check of {model}/{variant}")
        try:
            job.portability = check_portable(device, elf, variant)
        except NotPortable as exc:
            job.portability = exc.report
            raise
    if ready is not None:
        ready(job)
    if board is Board.NONE:
        return
    progress(f"{device.name}: {doing} {model}/{variant}")
    if board is Board.LEASE:
        with hold(device.name, lease or LeasePolicy.default()):
            job.on_board = True
            if work is not None:
                work(job, None)
    else:
        try:
            connection = open_board(device, elf, state / "logs", lease=lease)
        except NotImplementedError as exc:  # no driver for how this board is reached (yet)
            if board is not Board.IF_DRIVER:
                raise
            job.no_driver = str(exc)
            return
        job.on_board = True
        with connection as up:
            if work is not None:
                work(job, up)
    if after_board is not None:
        after_board(job)


# --------------------------------------------------------------------------- farm run, the nightly


def _base_record(device: Any, model: str, variant: str) -> ResultRecord:
    return ResultRecord(device=device.name, model=model, variant=variant, status=Status.ERROR,
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


@dataclass
class _Measured:
    timing: TimingResult
    outputs: np.ndarray
    energy: Any  # farm.power.energy.EnergyFigure | None
    identity: dict[str, str]
    stack_used: int | None = None  # bytes, painted on the board


def measure_one(device: Any, model: str, variant: str, *, state: Path, plan: MeasurePlan | None = None,
                progress: Progress = _quiet, target: BuildTarget | None = None,
                preflight: bool = True, kernels: str = "optimized",
                lease: LeasePolicy | None = None, artifacts: ModelArtifacts | None = None,
                observe: Callable[[Job, np.ndarray | None], None] | None = None) -> ResultRecord:
    """Measure one model variant on one device; never raises for a board problem
    (DeviceBusy / DeviceQuarantined propagate: the caller skips the device).

    ``observe(job, outputs)``, once the board is given back: the job's stages and the board's
    outputs of the test samples (None: the board work did not get that far), for a caller that
    makes more of the same job (farm.measure.portability_matrix.measure_and_cell).

    ``artifacts``: measure these (a user's .tflite, farm.models.user_tflite: ``model`` and
    ``variant`` are then its name and the variant its file is) instead of the zoo's.

    ``kernels`` picks the code generator's kernel set (prepare_firmware); it is
    recorded in the result's details. ``lease``: the policy the board is leased under.

    ``target`` builds with explicit flags instead of the device's capability model
    and ``preflight=False`` skips the size and portability checks: only for tests
    that must put a non-portable build on a board to see how it fails there.
    """
    measured: list[_Measured] = []

    def measure(job: Job, board: BoardConnection | None) -> None:
        assert board is not None and job.art is not None
        art = job.art
        # the caller's plan, else the model's own (a slow model runs fewer, shorter windows)
        use = plan or MeasurePlan(**art.measure_plan)
        board.session.timeout = use.request_timeout
        sample = np.ascontiguousarray(art.test_inputs[0]).tobytes()
        timing = measure_timing(board.session, sample, use, board.unit, board.convert,
                                timeout_per_inference=use.inference_timeout)
        outputs = collect_outputs(board.session, art.test_inputs, tuple(art.ref_outputs.shape[1:]),
                                  art.ref_outputs.dtype, timeout=use.inference_timeout)
        # after every inference so far: the painted stack's high-water mark (None: not painted)
        stack_used = board.session.read_timing().stack_used_bytes
        # a measuring power monitor (PPK2, Joulescope) records while the board runs inferences
        energy = energy_per_inference(device, timing.median, board.unit,
                                      run=lambda: energy_window(board.session, board.identity,
                                                                timeout=use.inference_timeout * 64))
        measured.append(_Measured(timing, outputs, energy, board.identity, stack_used))

    job = run_job(device, model, variant, state=state, work=measure, art=artifacts, target=target, kernels=kernels,
                  fits=preflight, portable=preflight, lease=lease, progress=progress)
    if observe is not None:
        observe(job, measured[0].outputs if measured and job.ok else None)
    record = _base_record(device, model, variant)
    art, fw = job.art, job.firmware
    if art is not None:
        record.model_size_bytes = art.size_bytes
        record.model_sha256 = art.sha256
        record.metric = art.metric
        record.accuracy_host = art.host_metric
    if fw is not None:
        record.flash_bytes, record.ram_bytes = fw.flash_bytes, fw.ram_bytes
        # None for a build with no stack sizing (AVR, a real board's framework)
        record.stack_bound_bytes = getattr(fw.build, "stack_bound_bytes", None)
        record.stack_reserved_bytes = getattr(fw.build, "stack_reserved_bytes", None)
        record.elf_sha256 = file_sha256(fw.build.elf)
        record.compiler, record.compiler_flags = fw.build.compiler, fw.build.compiler_flags
        record.details = {"firmware_cached": fw.build.cached, "build_seconds": round(fw.build.build_seconds, 3),
                          "float_abi": fw.build.float_abi, "kernels": kernels}
        if getattr(fw.build, "stack_sizing", None) is not None:
            details = fw.build.stack_details or {}
            record.details["stack"] = {"sizing": fw.build.stack_sizing,
                                       **{k: details.get(k) for k in ("inference_bytes", "handler_bytes", "path",
                                                                      "reason")}}
        if job.portability is not None and job.portability.portable:
            record.details["float_kind"] = job.portability.float_kind
    if not job.ok:
        record.status, record.message = job.status, job.message
        if job.details:
            record.details = {**(record.details or {}), **job.details}
        return record
    assert art is not None and record.details is not None
    result = measured[0]
    timing = result.timing
    record.stack_used_bytes = result.stack_used
    record.count_median = timing.median
    record.count_min, record.count_max = timing.minimum, timing.maximum
    record.windows = len(timing.window_counts)
    record.window_counts = [float(c) for c in timing.window_counts]
    record.latency_us = timing.median / device.clock_hz * 1e6
    record.latency_is_estimate = Unit(record.unit).latency_is_estimate
    if result.energy is not None:  # no power monitor declared: no energy figure, not a made-up one
        record.energy_uj, record.energy_source = result.energy.energy_uj, result.energy.source
    record.bit_exact_fraction, record.max_abs_error = compare_outputs(art, result.outputs)
    # the same dequantization and scoring as the host metric, so bit-exact outputs
    # give exactly the host's figure
    record.accuracy_device = score(art.metric, art.outputs_to_float(result.outputs), art.ground_truth)
    record.status = Status.OK
    notes = []
    if timing.rejected:
        notes.append(f"rejected outlier windows: {timing.rejected}")
    if art.latency_only:
        notes.append("latency-only model (a model file without test data: inputs generated, error measured "
                     "against the host reference)" if artifacts is not None  # a user's file: no ground truth
                     else "latency-only model (trained on generated data; accuracy not meaningful)")
        record.details["latency_only"] = True
    if result.identity.get("timer") == "micros":  # the Arduino layer without a cycle counter
        notes.append("cycles scaled from a 1 MHz micros() timer (the core has no cycle counter): coarse")
    record.message = "; ".join(notes) or None
    return record


# --------------------------------------------------------------------------- farm infer


def infer(tflite: Path, device: Any, inputs: np.ndarray, *, state: Path,
          progress: Progress = _quiet, kernels: str = "optimized",
          lease: LeasePolicy | None = None) -> np.ndarray:
    """Bring-your-own-model: run every sample of ``inputs`` on the device, return outputs.

    ``inputs`` holds samples along axis 0, each shaped like the model input with or
    without its leading batch dimension of 1. Raises on failure (the CLI reports it):
    the job's own exception (DoesNotFit, NotPortable, DeviceHung, ...), a fault as
    DeviceRefused with its decoded sentence, ValueError for inputs of the wrong shape.
    """
    codegen.check_supported(tflite)
    samples: list[np.ndarray] = []
    outputs: list[np.ndarray] = []

    def shape_inputs(job: Job) -> None:
        assert job.firmware is not None
        gen = job.firmware.generated
        samples.append(_as_samples(inputs, tuple(gen.input_shape), np.dtype(gen.input_dtype)))

    def run_samples(job: Job, board: BoardConnection | None) -> None:
        assert board is not None and job.firmware is not None
        gen = job.firmware.generated
        progress(f"{device.name}: running {len(samples[0])} samples")
        outputs.append(collect_outputs(board.session, samples[0], tuple(gen.output_shape),
                                       np.dtype(gen.output_dtype), timeout=60.0))

    job = run_job(device, tflite.stem, "user", state=state, tflite=tflite, kernels=kernels, work=run_samples,
                  ready=shape_inputs, doing="running", lease=lease, progress=progress)
    if isinstance(job.error, DeviceFault):
        raise DeviceRefused(job.message or "the board faulted") from None
    job.raise_error()
    assert job.firmware is not None
    gen = job.firmware.generated
    in_shape, out_shape = tuple(gen.input_shape), tuple(gen.output_shape)
    result = outputs[0]
    if inputs.ndim == len(in_shape) + 1 and in_shape and in_shape[0] == 1 and out_shape and out_shape[0] == 1:
        return result  # samples kept their batch dimension: keep it on the outputs too
    return result.reshape(len(samples[0]), *out_shape[1:]) if out_shape and out_shape[0] == 1 else result


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
