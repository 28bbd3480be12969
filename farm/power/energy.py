"""Energy per inference: the monitor a device's inventory entry names, looked up.

This is the one module that imports every monitor driver (the datasheet model,
PPK2, Joulescope), so each has registered itself (:mod:`farm.power.monitor`) before
a kind is looked up. The interface, the figure and the errors live in
:mod:`farm.power.monitor` and are re-exported here for the callers.
"""

from __future__ import annotations

from farm.config.inventory import Device, PowerKind
from farm.power import joulescope, ppk2
from farm.power.datasheet import DatasheetModel
from farm.power.monitor import (
    BoardRun,
    EnergyError,
    EnergyFigure,
    PowerMonitor,
    PowerMonitorNotImplementedError,
    RunWindow,
    register_power_monitor,
    registered_monitors,
)

__all__ = [
    "BoardRun", "DatasheetModel", "EnergyError", "EnergyFigure", "PowerMonitor", "PowerMonitorNotImplementedError",
    "RunWindow", "energy_per_inference", "implemented_kinds", "power_monitor_class", "power_monitor_for",
    "register_power_monitor",
]

#: the measuring drivers, imported so that they register (the model is imported above)
MEASURING_DRIVERS = (ppk2.Ppk2Monitor, joulescope.JoulescopeMonitor)


def implemented_kinds() -> list[str]:
    return sorted(str(k) for k in registered_monitors())


def power_monitor_class(kind: str) -> type[PowerMonitor]:
    """The registered monitor for ``kind``; a declared but unimplemented kind is an error."""
    power_kind = PowerKind(kind)
    cls = registered_monitors().get(power_kind)
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
