"""Budgets: the limits a project puts on its models, as checks of one measurement each.

A model's ``budgets:`` block (farm.project.file.Budgets) holds limits at three levels: the
model's own, per variant (``variants:``) and per device (``devices:``); the most specific
wins, device > variant > model (:func:`effective_limits`). Every limit of a (model,
variant, device) is one :class:`BudgetCheck` — one HIL test of farm/hil/test_budgets.py,
named ``<model>-<variant>-<device>-<budget>`` — and :func:`judge` turns a check and the
measured ResultRecord (farm.store.records) into a :class:`BudgetVerdict` with a sentence:

    my-model/int8 on qemu-m3: latency 812.4 µs (40,620 instructions at 50 MHz) > budget 500 µs

The figures are the honest ones of the record: latency is count / clock and says what was
counted (instructions on emulators: an estimate; cycles on real boards); energy says whether
it was measured or modelled; the accuracy drop compares with the same model's float32 on the
same board. A budget that cannot be judged (no energy figure on the board, a build that does
not fit, no float32 result, a latency-only model's accuracy) fails with the reason: it never
passes silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from farm.project.file import Budgets, Project
from farm.store.records import ResultRecord, is_modelled
from farm.store.status import Status

#: the budget keys, in the order the project file documents them (and reports list them)
BUDGET_KEYS: tuple[str, ...] = ("latency_us", "latency_count", "energy_uj", "accuracy_min", "accuracy_drop_max",
                                "flash_bytes_max", "ram_bytes_max", "portable")
#: what each budget limits, for people
BUDGET_LABELS: dict[str, str] = {
    "latency_us": "latency", "latency_count": "count per inference", "energy_uj": "energy per inference",
    "accuracy_min": "accuracy", "accuracy_drop_max": "accuracy drop vs float32", "flash_bytes_max": "flash",
    "ram_bytes_max": "RAM", "portable": "portability",
}
#: budgets that are a minimum (the measurement must reach them); the others are maxima
MINIMUM_BUDGETS = frozenset({"accuracy_min"})
#: the variant the accuracy drop is measured against
REFERENCE_VARIANT = "float32"
Limit = float | int | bool


def effective_limits(budgets: Budgets | None, variant: str, device: str) -> dict[str, Limit]:
    """The limits that hold for ``variant`` on ``device``: the model's budgets, overridden by
    ``budgets.variants[variant]``, overridden by ``budgets.devices[device]`` (device > variant >
    model; farm.project.file.Budgets.limits_for). A key left unset at a level keeps the level
    below; ``portable: false`` means "not required" there. ``budgets`` None: no limits."""
    if budgets is None:
        return {}
    given = budgets.limits_for(variant, device).given()
    limits = {key: given[key] for key in BUDGET_KEYS if key in given}
    if limits.get("portable") is False:
        del limits["portable"]
    return limits


@dataclass(frozen=True)
class BudgetCheck:
    """One budget of one (model, variant, device): one HIL test."""

    model: str
    variant: str
    device: str
    budget: str  # one of BUDGET_KEYS
    limit: Limit

    @property
    def test_id(self) -> str:
        """``my-model-int8-qemu-m3-latency_us``: the test's id in the terminal, JUnit XML and report."""
        return f"{self.model}-{self.variant}-{self.device}-{self.budget}"

    @property
    def needs_reference(self) -> bool:
        """Whether judging it needs the model's float32 result on the same board too."""
        return self.budget == "accuracy_drop_max"


def model_checks(model: str, variants: Iterable[str], budgets: Budgets | None,
                 devices: Iterable[str]) -> list[BudgetCheck]:
    """Every check of one model: per variant, per device, per budget that holds there.

    The float32 variant gets no accuracy-drop check: it is the reference (its drop is 0 by
    definition, a test that could not fail)."""
    checks = []
    devices = list(devices)
    for variant in variants:
        for device in devices:
            for key, limit in effective_limits(budgets, variant, device).items():
                if key == "accuracy_drop_max" and variant == REFERENCE_VARIANT:
                    continue
                checks.append(BudgetCheck(model, variant, device, key, limit))
    return checks


def project_checks(project: Project | None, devices: Iterable[str],
                   models: Iterable[str] | None = None) -> list[BudgetCheck]:
    """Every check of the project: its models with budgets (its own, then the zoo examples it
    declares), each over its declared variants (``project.variants_of``), on ``devices``;
    ``models`` narrows to those names (the active models: ``farm.models.list_models()``)."""
    if project is None:
        return []
    devices = list(devices)
    names = project.model_names
    if models is not None:
        wanted = set(models)
        names = [n for n in names if n in wanted]
    checks: list[BudgetCheck] = []
    for name in names:
        budgets = project.budgets_of(name)
        if budgets is not None:
            checks.extend(model_checks(name, project.variants_of(name), budgets, devices))
    return checks


@dataclass(frozen=True)
class BudgetVerdict:
    """A check judged against a measurement. ``measured`` None: it could not be judged (and
    failed: ``sentence`` says why)."""

    check: BudgetCheck
    passed: bool
    limit_text: str  # "500 µs"
    measured_text: str  # "812.4 µs (40,620 instructions at 50 MHz)", or why it could not be judged
    sentence: str  # the whole verdict, one line
    measured: float | bool | None = None

    @property
    def judged(self) -> bool:
        return self.measured is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the run's details (the reports read these, they judge nothing)."""
        return {**asdict(self.check), "test": self.check.test_id, "passed": self.passed, "judged": self.judged,
                "limit_text": self.limit_text, "measured": self.measured, "measured_text": self.measured_text,
                "sentence": self.sentence}


# --------------------------------------------------------------------------- formatting


def _clock(hz: float) -> str:
    return f"{hz / 1e6:g} MHz" if hz >= 1e6 else f"{hz / 1e3:g} kHz"


def _count(value: float, unit: str | None) -> str:
    return f"{value:,.0f} {unit or 'counts'}"


def _number(value: float) -> str:
    """``40,000``, ``0.5``, ``1,500,000``: whole numbers with separators, others as they are."""
    value = float(value)
    return f"{int(value):,}" if value.is_integer() else f"{value:,.6g}"


def limit_text(key: str, limit: Limit, unit: str | None = None) -> str:
    """The limit as people read it: ``500 µs``, ``2,000,000 instructions``, ``0.9``, ``262,144 B``."""
    if key == "portable":
        return "portable" if limit else "not required"
    if key == "latency_us":
        return f"{_number(limit)} µs"
    if key == "latency_count":
        return f"{_number(limit)} {unit or 'counts'}"
    if key == "energy_uj":
        return f"{_number(limit)} µJ"
    if key in ("flash_bytes_max", "ram_bytes_max"):
        return f"{_number(limit)} B"
    return _number(limit)


def _higher_is_better(metric: str | None) -> bool | None:
    """Whether a bigger value of ``metric`` is better; None when the farm does not know."""
    if not metric:
        return None
    try:
        from farm.models.metrics import higher_is_better

        return higher_is_better(metric)
    except (ValueError, ImportError, AttributeError):  # an unknown metric, a user function that is gone
        return None


# --------------------------------------------------------------------------- judging


class _Verdicts:
    """Builds the verdicts of one check (one place for its prefix and wording)."""

    def __init__(self, check: BudgetCheck, unit: str | None) -> None:
        self.check = check
        self.prefix = f"{check.model}/{check.variant} on {check.device}: "
        self.limit = limit_text(check.budget, check.limit, unit)

    def compare(self, what: str, value: float, text: str) -> BudgetVerdict:
        """``value`` against the limit: at most (or at least, MINIMUM_BUDGETS) the limit passes."""
        limit = float(self.check.limit)
        if self.check.budget in MINIMUM_BUDGETS:
            passed, relation = value >= limit, (">=" if value >= limit else "<")
        else:
            passed, relation = value <= limit, ("<=" if value <= limit else ">")
        sentence = f"{self.prefix}{what} {text} {relation} budget {self.limit}"
        return BudgetVerdict(self.check, passed, self.limit, text, sentence, float(value))

    def flag(self, passed: bool, text: str, sentence: str) -> BudgetVerdict:
        return BudgetVerdict(self.check, passed, self.limit, text, self.prefix + sentence, passed)

    def cannot(self, reason: str) -> BudgetVerdict:
        """Failed: the budget cannot be judged, with the reason (never a silent pass)."""
        label = BUDGET_LABELS.get(self.check.budget, self.check.budget)
        sentence = f"{self.prefix}{label} budget {self.limit} cannot be judged: {reason}"
        return BudgetVerdict(self.check, False, self.limit, f"not judged: {reason}", sentence, None)


def _did_not_run(record: ResultRecord) -> str:
    return f"the measurement is {record.status}" + (f": {record.message}" if record.message else "")


def judge(check: BudgetCheck, record: ResultRecord | None, device: Any,
          reference: ResultRecord | None = None) -> BudgetVerdict:
    """Judge ``check`` on ``record`` (the measurement of its model, variant and device).

    ``device``: the inventory's device (its ``clock_hz``, ``fpu``, ``core``); ``reference``: the
    same model's float32 result on the same device (for ``accuracy_drop_max``)."""
    v = _Verdicts(check, record.unit if record is not None else getattr(device, "unit", None))
    if record is None:
        return v.cannot("not measured in this run")
    key = check.budget
    if key in ("flash_bytes_max", "ram_bytes_max"):
        return _judge_size(v, record)
    if key == "portable":
        return _judge_portable(v, record, device)
    if record.status != Status.OK:
        return v.cannot(_did_not_run(record))
    if key in ("latency_us", "latency_count"):
        return _judge_latency(v, record, device)
    if key == "energy_uj":
        return _judge_energy(v, record, device)
    if key in ("accuracy_min", "accuracy_drop_max"):
        return _judge_accuracy(v, record, reference)
    return v.cannot(f"unknown budget {key!r} (known: {', '.join(BUDGET_KEYS)})")


def _judge_latency(v: _Verdicts, record: ResultRecord, device: Any) -> BudgetVerdict:
    if record.count_median is None:
        return v.cannot("the result has no count per inference")
    count = _count(record.count_median, record.unit)
    if v.check.budget == "latency_count":
        return v.compare("count per inference", record.count_median, count)
    clock_hz = getattr(device, "clock_hz", None)
    if not clock_hz:
        return v.cannot(f"{v.check.device} declares no clock (clock_hz): no latency in µs")
    latency = record.count_median / clock_hz * 1e6
    return v.compare("latency", latency, f"{latency:,.1f} µs ({count} at {_clock(clock_hz)})")


def _judge_energy(v: _Verdicts, record: ResultRecord, device: Any) -> BudgetVerdict:
    if record.energy_uj is None:
        if getattr(device, "power", None) is None:
            return v.cannot(f"{v.check.device} has no energy figure: the inventory declares no power monitor "
                            f"or model for it")
        return v.cannot("the result has no energy figure")
    kind = "modelled from the count, not measured" if is_modelled(record.energy_source) else \
        f"measured: {record.energy_source}" if record.energy_source else "measured"
    return v.compare("energy", record.energy_uj, f"{record.energy_uj:.4g} µJ per inference ({kind})")


def _latency_only(record: ResultRecord) -> bool:
    return bool((record.details or {}).get("latency_only"))


def _judge_accuracy(v: _Verdicts, record: ResultRecord, reference: ResultRecord | None) -> BudgetVerdict:
    metric = record.metric or "metric"
    if _latency_only(record):
        return v.cannot(f"its {metric} is not meaningful (latency-only: no real test data)")
    if record.accuracy_device is None:
        return v.cannot(f"the result has no {metric} on the device")
    better = _higher_is_better(record.metric)
    value = record.accuracy_device
    host = f" (host {record.accuracy_host:.4f})" if record.accuracy_host is not None else ""
    if v.check.budget == "accuracy_min":
        if better is False:
            return v.cannot(f"{metric} is an error (lower is better): a minimum does not apply; "
                            f"use accuracy_drop_max")
        if better is None:
            return v.cannot(f"the farm does not know whether a higher {metric} is better")
        return v.compare(metric, value, f"{value:.4f} on the device{host}")
    # accuracy_drop_max: how much worse than the float32 build of the same model on the same board
    if reference is None:
        return v.cannot(f"no {REFERENCE_VARIANT} result of {v.check.model} on {v.check.device} to compare with")
    if reference.status != Status.OK or reference.accuracy_device is None:
        return v.cannot(f"its {REFERENCE_VARIANT} build on {v.check.device}: " + (
            _did_not_run(reference) if reference.status != Status.OK else f"no {metric} on the device"))
    if better is None:
        return v.cannot(f"the farm does not know whether a higher {metric} is better")
    base = reference.accuracy_device
    drop = base - value if better else value - base
    return v.compare(f"{metric} drop vs {REFERENCE_VARIANT}", drop,
                     f"{drop:.4f} ({value:.4f} vs {REFERENCE_VARIANT} {base:.4f} on this board)")


def _judge_size(v: _Verdicts, record: ResultRecord) -> BudgetVerdict:
    """Flash / RAM from the ELF's sizes, which a build that does not fit the board still has."""
    flash = v.check.budget == "flash_bytes_max"
    value = record.flash_bytes if flash else record.ram_bytes
    if value is None:
        return v.cannot(f"no firmware size: {_did_not_run(record)}")
    return v.compare("flash" if flash else "RAM", value, f"{value:,} B")


def _judge_portable(v: _Verdicts, record: ResultRecord, device: Any) -> BudgetVerdict:
    """The preflight's verdict on the very ELF: no instruction the core lacks, int8 float-free."""
    core = f"{getattr(device, 'core', '?')}, " + ("no FPU" if getattr(device, "fpu", None) == "none"
                                                 else f"FPU {getattr(device, 'fpu', '?')}")
    if record.status == Status.NOT_PORTABLE:
        why = record.message or "the portability scan refused the build"
        return v.flag(False, f"not portable: {why}", f"not portable to {v.check.device} ({core}): {why}")
    kind = (record.details or {}).get("float_kind")
    if kind is None:
        return v.cannot(f"the portability scan did not run: {_did_not_run(record)}")
    if record.variant == "int8" and kind != "float-free":
        return v.flag(False, f"int8 build is {kind}", f"int8 build is {kind}, not float-free ({core})")
    return v.flag(True, f"portable ({kind})", f"portable: the {record.variant} build is {kind} on {v.check.device} "
                                               f"({core}), no instruction the core lacks")

