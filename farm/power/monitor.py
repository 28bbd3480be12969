"""The power-monitor interface and its registry; it imports no driver.

A device's ``power.kind`` names the monitor (``model``, ``ppk2``, ``joulescope``).
Each monitor is a class in its own module that registers itself with
:func:`register_power_monitor`: adding a monitor is a new module, not an edit to
a dispatcher (the lookup, :mod:`farm.power.energy`, imports the driver modules).
Every figure carries its source, so a modelled number is never mistaken for a
measured one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, TypeVar

from farm.config.inventory import Device, Power, PowerKind


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


def registered_monitors() -> Mapping[PowerKind, type[PowerMonitor]]:
    """The monitors registered so far (read-only): those whose modules were imported."""
    return MappingProxyType(_REGISTRY)
