"""The datasheet model: energy from a count, when no instrument measures the board.

A core drawing ``I`` uA per MHz at ``f`` MHz and ``V`` volts for ``count / f``
microseconds uses ``count x V x I x 1e-12`` joules -- the clock cancels out, so
the energy follows the count alone.
"""

from __future__ import annotations

import math

from farm.config.inventory import Device
from farm.power.monitor import EnergyError, EnergyFigure, PowerMonitor, register_power_monitor
from farm.store.status import Unit


def check_count(count: float, unit: str) -> None:
    """A count a model can use: of a known unit, finite and non-negative."""
    if unit not in {str(u) for u in Unit}:
        raise EnergyError(f"unknown count unit {unit!r}; expected one of {', '.join(Unit)}")
    if not math.isfinite(count) or count < 0:
        raise EnergyError(f"expected a finite, non-negative {unit} count; got {count!r}")


@register_power_monitor("model")
class DatasheetModel(PowerMonitor):
    """energy = count x V x (uA/MHz) x 1e-12 J, from the datasheet run current per MHz.

    On an emulator the count is of instructions, taken one per cycle; the source
    says which unit was used."""

    def energy_per_inference(self, count: float, unit: str, device: Device) -> EnergyFigure:
        self._check_device(device)
        check_count(count, unit)
        ua_per_mhz = self.spec.ua_per_mhz
        if ua_per_mhz is None:  # the inventory rejects this; a Power built in code may not
            raise EnergyError(f"device {device.name}: power kind model needs ua_per_mhz")
        energy_j = count * self.spec.voltage * ua_per_mhz * 1e-12
        source = f"modelled: {ua_per_mhz:g} uA/MHz x {self.spec.voltage:g} V x {unit} (datasheet model, not measured)"
        return EnergyFigure(energy_uj=energy_j * 1e6, source=source)
