"""Energy per inference: one interface for power monitors, chosen by the inventory.

A device's ``power.kind`` names the monitor (``model``, ``ppk2``, ``joulescope``).
Implementations register themselves with :func:`register_power_monitor`; adding
a monitor is a new class, not an edit to a dispatcher. Every figure carries its
source, so a modelled number is never mistaken for a measured one.

The datasheet model: a core drawing ``I`` uA per MHz at ``f`` MHz and ``V`` volts
for ``count / f`` microseconds uses ``count x V x I x 1e-12`` joules -- the clock
cancels out, so the energy follows the count alone.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from farm.config.inventory import Device, Power, PowerKind

UNITS = ("cycles", "instructions")


@dataclass(frozen=True)
class EnergyFigure:
    energy_uj: float  # microjoules per inference
    source: str  # which monitor measured it, or how it was modelled


class EnergyError(ValueError):
    """An energy figure cannot be computed from the given inputs."""


class PowerMonitorNotImplementedError(NotImplementedError):
    """The inventory names a power monitor this version of tinyfarm does not implement."""


@dataclass(frozen=True)
class RunWindow:
    """What the board did while a measuring monitor recorded: ``count`` inferences, the
    RUN request sent at ``started`` and answered at ``finished`` (time.monotonic()), and
    the board's own timing of its model loop in seconds (None when unknown)."""

    count: int
    started: float
    finished: float
    loop_seconds: float | None = None


#: runs inferences on the board while a monitor records; returns what it did
BoardRun = Callable[[], RunWindow]


class PowerMonitor(ABC):
    """A driver bound to one device's ``power`` section of the inventory.

    A *modelled* monitor computes energy from a count (``energy_per_inference``); a
    *measuring* one (``measures = True``: PPK2, Joulescope) records current while the
    board runs inferences and integrates it (``measure_energy(run, device)``).
    """

    kind: ClassVar[PowerKind]
    measures: ClassVar[bool] = False

    def __init__(self, spec: Power) -> None:
        if spec.kind is not self.kind:
            raise EnergyError(f"{type(self).__name__} handles power kind {self.kind}, not {spec.kind}")
        self.spec = spec

    @abstractmethod
    def energy_per_inference(self, count: float, unit: str, device: Device) -> EnergyFigure:
        """Energy of one inference that took ``count`` ``unit`` (cycles or instructions)."""

    def measure_energy(self, run: BoardRun, device: Device) -> EnergyFigure:
        """Record while ``run()`` runs inferences on the board; energy per inference."""
        raise EnergyError(f"power kind {self.kind} does not measure; it models energy from a count")

    def _check_device(self, device: Device) -> None:
        if device.power != self.spec:
            raise EnergyError(f"this {self.kind} monitor is bound to another power section than device {device.name}'s")


M = TypeVar("M", bound=type[PowerMonitor])

_REGISTRY: dict[PowerKind, type[PowerMonitor]] = {}


def register_power_monitor(kind: str) -> Callable[[M], M]:
    """Class decorator: make ``cls`` the monitor for inventory ``power.kind: <kind>``."""
    power_kind = PowerKind(kind)  # only kinds the inventory can declare

    def decorate(cls: M) -> M:
        if power_kind in _REGISTRY:
            raise ValueError(f"power kind {power_kind} is already registered by {_REGISTRY[power_kind].__name__}")
        cls.kind = power_kind
        _REGISTRY[power_kind] = cls
        return cls

    return decorate


def implemented_kinds() -> list[str]:
    return sorted(str(k) for k in _REGISTRY)


def power_monitor_class(kind: str) -> type[PowerMonitor]:
    """The registered monitor for ``kind``; a declared but unimplemented kind is an error."""
    power_kind = PowerKind(kind)
    cls = _REGISTRY.get(power_kind)
    if cls is None:
        raise PowerMonitorNotImplementedError(
            f"power monitor {power_kind!s} is not implemented yet in this version of tinyfarm "
            f"(implemented: {', '.join(implemented_kinds())}); no energy figure is produced for it"
        )
    return cls


def power_monitor_for(device: Device) -> PowerMonitor | None:
    """The monitor declared for ``device``; None when its inventory entry has no ``power``."""
    if device.power is None:
        return None
    try:
        cls = power_monitor_class(device.power.kind)
    except PowerMonitorNotImplementedError as exc:
        raise PowerMonitorNotImplementedError(f"device {device.name}: {exc}") from None
    return cls(device.power)


def energy_per_inference(device: Device, count: float, unit: str,
                         run: BoardRun | None = None) -> EnergyFigure | None:
    """Energy of one inference on ``device`` by its declared monitor; None when the
    device declares no ``power``. A measuring monitor records while ``run()`` runs
    inferences on the board (an EnergyError without it). A declared but
    unimplemented monitor raises :class:`PowerMonitorNotImplementedError`."""
    monitor = power_monitor_for(device)
    if monitor is None:
        return None
    if monitor.measures:
        if run is None:
            raise EnergyError(f"device {device.name}: {monitor.kind} measures the board while it runs; "
                              f"no board run was given")
        return monitor.measure_energy(run, device)
    return monitor.energy_per_inference(count, unit, device)


def _check_count(count: float, unit: str) -> None:
    if unit not in UNITS:
        raise EnergyError(f"unknown count unit {unit!r}; expected one of {', '.join(UNITS)}")
    if not math.isfinite(count) or count < 0:
        raise EnergyError(f"expected a finite, non-negative {unit} count; got {count!r}")


@register_power_monitor("model")
class DatasheetModel(PowerMonitor):
    """energy = count x V x (uA/MHz) x 1e-12 J, from the datasheet run current per MHz.

    On an emulator the count is of instructions, taken one per cycle; the source
    says which unit was used."""

    def energy_per_inference(self, count: float, unit: str, device: Device) -> EnergyFigure:
        self._check_device(device)
        _check_count(count, unit)
        ua_per_mhz = self.spec.ua_per_mhz
        if ua_per_mhz is None:  # the inventory rejects this; a Power built in code may not
            raise EnergyError(f"device {device.name}: power kind model needs ua_per_mhz")
        energy_j = count * self.spec.voltage * ua_per_mhz * 1e-12
        source = f"modelled: {ua_per_mhz:g} uA/MHz x {self.spec.voltage:g} V x {unit} (datasheet model, not measured)"
        return EnergyFigure(energy_uj=energy_j * 1e6, source=source)


# Monitors that measure live in farm/power/ and register on import.
from farm.power import joulescope as _joulescope  # noqa: E402,F401
from farm.power import ppk2 as _ppk2  # noqa: E402,F401
