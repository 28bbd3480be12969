"""The plain records the store keeps and hands back: results, runs and findings.

These are what crosses from the store into the judge and the reports: dataclasses of
plain values (statuses and units are the strings of :mod:`farm.store.status`), with no
database in them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from farm.store.status import RunStatus, Status, Unit

#: run: `farm run`; nightly: `farm nightly`; pytest: a HIL session started by plain pytest.
RUN_KINDS = ("run", "nightly", "pytest")
#: running until finish_run; a run that crashed keeps "running" and no finished_at (it reads as
#: "aborted" once its process is gone). passed / failed: the run's verdict; finished: completed
#: without a verdict; error: the run itself broke; interrupted: stopped by the user.
RUN_STATUSES = tuple(RunStatus)
RESULT_STATUSES = tuple(Status)
UNITS = tuple(Unit)
#: how a finding judges a change against the baseline (see farm.judge.regression)
SEVERITIES = ("regression", "changed", "improved", "noise", "new", "missing")
#: how an energy source that was computed from a count, not measured, begins (farm.power.energy)
MODELLED_PREFIX = "modelled"


def is_modelled(energy_source: str | None) -> bool:
    """Whether an energy figure was modelled from the count (a datasheet model), not measured."""
    return energy_source is not None and energy_source.startswith(MODELLED_PREFIX)


@dataclasses.dataclass(kw_only=True)
class ResultRecord:
    """One measured (or failed) combination of device, model and variant."""

    device: str
    model: str
    variant: str
    status: str  # a Status
    message: str | None = None  # why it is not ok (fault decoded, does not fit by N bytes, ...)
    unit: str | None = None  # a Unit: "cycles" | "instructions"
    count_median: float | None = None
    count_min: int | None = None
    count_max: int | None = None
    windows: int | None = None
    latency_us: float | None = None
    latency_is_estimate: bool | None = None  # True when derived from an instruction count
    energy_uj: float | None = None
    energy_source: str | None = None
    metric: str | None = None  # "accuracy" | "mae"
    accuracy_device: float | None = None
    accuracy_host: float | None = None
    bit_exact_fraction: float | None = None
    max_abs_error: float | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None  # .data + .bss + the reserved stack (.stack), from the ELF
    #: the stack, in bytes: the high-water mark painted and measured on the board (None: the board
    #: does not paint, e.g. AVR), the static worst-case bound of the build (-fstack-usage over the
    #: call graph; None: not computable) and the reservation linked (.stack; counted in ram_bytes)
    stack_used_bytes: int | None = None
    stack_bound_bytes: int | None = None
    stack_reserved_bytes: int | None = None
    model_size_bytes: int | None = None
    model_sha256: str | None = None
    elf_sha256: str | None = None
    compiler: str | None = None
    compiler_flags: str | None = None
    host: str | None = None  # bench host; None for local and emulated boards
    farm_version: str | None = None  # filled from the run when left None
    #: per-inference count of every kept timed window (the median and the noise band come from these)
    window_counts: list[float] | None = None
    #: free-form facts about how the result was made, e.g. firmware_cached, build_seconds, float_kind
    details: dict[str, Any] | None = None
    created_at: datetime | None = None  # set by the store
    id: int | None = None  # set by the store
    run_id: int | None = None  # set by the store

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)


@dataclasses.dataclass(kw_only=True)
class RunRecord:
    id: int
    kind: str  # "run" | "nightly" | "pytest"
    status: str  # a RunStatus; "aborted" when it was running and its process is gone
    started_at: datetime
    finished_at: datetime | None
    git_commit: str | None
    farm_version: str | None
    baseline_id: int | None = None  # the run this one was compared with (nightly)
    regressions: int | None = None  # regressions found against it; None when not compared
    details: dict[str, Any] | None = None  # e.g. HIL test counts, how the baseline was chosen

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)


@dataclasses.dataclass(kw_only=True)
class Finding:
    """What changed for one metric of one (device, model, variant) between a baseline and a run.

    ``severity``: ``regression`` (fails the night), ``changed`` (reported, within the
    thresholds), ``improved``, ``noise`` (a real board's change inside its noise band),
    ``new`` (no such result in the baseline), ``missing`` (in the baseline, not in the run).
    ``before``/``after`` are numbers, or statuses for the metric ``status``.
    """

    device: str
    model: str
    variant: str
    metric: str  # count | energy_uj | accuracy | bit_exact | max_abs_error | flash_bytes | ram_bytes | ...
    severity: str  # one of SEVERITIES
    before: float | str | None = None
    after: float | str | None = None
    unit: str | None = None
    change_pct: float | None = None
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.device, self.model, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def record_dict(record: Any) -> dict[str, Any]:
    """A record's fields as JSON-ready values (datetimes in ISO 8601)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dataclasses.asdict(record).items()}
