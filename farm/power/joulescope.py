"""Joulescope (JS110 / JS220), through the ``joulescope`` package (its v1 backend).

The inventory's ``power.port`` is the instrument's serial number (as printed by
``python -m joulescope scan``). The Joulescope measures current and voltage
itself; the harness's GPIO marker goes to its general-purpose input 0, which the
driver maps onto the current signal's least significant bit (``current_lsb =
gpi0``). Energy uses the measured mean voltage.

Not verified here: there is no Joulescope on these machines, and the package's
USB backend cannot be exercised without one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from farm.power.monitor import BoardRun, EnergyError, EnergyFigure, PowerMonitor, register_power_monitor
from farm.power.capture import IDLE_LEAD, TAIL, Capture, energy_from_capture


@register_power_monitor("joulescope")
class JoulescopeMonitor(PowerMonitor):
    measures = True

    def energy_per_inference(self, count: float, unit: str, device: Any) -> EnergyFigure:
        raise EnergyError("the Joulescope measures the board while it runs: use measure_energy")

    def _find(self) -> Any:
        try:
            import joulescope
        except ImportError as exc:  # pragma: no cover - a dependency of tinyfarm
            raise EnergyError(f"the joulescope package is not installed: {exc}") from None
        wanted = str(self.spec.port)
        devices = joulescope.scan(config="auto")
        for js in devices:
            names = {str(js), str(getattr(js, "device_serial_number", "")), str(getattr(js, "serial_number", ""))}
            if wanted in names or any(name.endswith(wanted) for name in names if name):
                return js
        found = ", ".join(str(js) for js in devices) or "none"
        raise EnergyError(f"no Joulescope with serial number {wanted} (found: {found})")

    def measure_energy(self, run: BoardRun, device: Any) -> EnergyFigure:
        self._check_device(device)
        js = self._find()
        with js:
            js.parameter_set("i_range", "auto")
            js.parameter_set("current_lsb", "gpi0")  # the harness's marker pin
            started = time.monotonic()
            js.start()
            time.sleep(IDLE_LEAD)
            window = run()
            time.sleep(TAIL)
            js.stop()
            first, last = js.stream_buffer.sample_id_range
            data = js.stream_buffer.samples_get(first, last, fields=["current", "voltage", "current_lsb"])
            rate = float(js.output_sampling_frequency)
        signals = data["signals"]
        current = np.asarray(signals["current"]["value"], dtype=np.float64) * 1e6
        voltage = float(np.nanmean(signals["voltage"]["value"]))
        marker = np.asarray(signals["current_lsb"]["value"]).astype(bool)
        capture = Capture(current_ua=np.nan_to_num(current), rate_hz=rate, started=started, voltage=voltage,
                          marker=marker)
        return energy_from_capture(capture, window, f"Joulescope {self.spec.port}")
