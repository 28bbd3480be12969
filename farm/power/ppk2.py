"""Nordic Power Profiler Kit II, through ``ppk2-api`` (its serial protocol over USB CDC).

The PPK2 supplies the board (source-meter mode) at the inventory's ``voltage``
and streams 100 000 samples per second, each a little-endian u32: bits 0-13 the
ADC value, bits 14-16 the measurement range, bits 24-31 the logic inputs D0-D7.
The per-range calibration the PPK2 reports in its metadata (R, O, GS, GI, S, I,
UG) turns a sample into amperes (ppk2-api's ``get_samples``). The harness's GPIO
marker goes to logic input D0 (``MARKER_CHANNEL``).

Verified here only against a fake PPK2 on a pty that speaks this protocol
(tests/fake_ppk2.py); not verified on hardware.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from farm.power.monitor import BoardRun, EnergyError, EnergyFigure, PowerMonitor, register_power_monitor
from farm.power.capture import IDLE_LEAD, TAIL, Capture, energy_from_capture

SAMPLE_RATE = 100_000
MARKER_CHANNEL = 0  # logic input D0


@register_power_monitor("ppk2")
class Ppk2Monitor(PowerMonitor):
    measures = True

    def energy_per_inference(self, count: float, unit: str, device: Any) -> EnergyFigure:
        raise EnergyError("the PPK2 measures the board while it runs: use measure_energy")

    def open(self) -> Any:
        try:
            from ppk2_api.ppk2_api import PPK2_API
        except ImportError as exc:  # pragma: no cover - a dependency of tinyfarm
            raise EnergyError(f"ppk2-api is not installed: {exc}") from None
        try:
            ppk = PPK2_API(self.spec.port, timeout=1, write_timeout=1)
        except Exception as exc:  # pyserial's SerialException and OSError
            raise EnergyError(f"cannot open the PPK2 at {self.spec.port}: {exc}") from None
        if not ppk.get_modifiers():
            ppk.ser.close()
            raise EnergyError(f"the device at {self.spec.port} did not answer as a PPK2 (no calibration metadata)")
        ppk.use_source_meter()
        ppk.set_source_voltage(int(round(self.spec.voltage * 1000)))
        ppk.toggle_DUT_power("ON")
        return ppk

    def measure_energy(self, run: BoardRun, device: Any) -> EnergyFigure:
        self._check_device(device)
        ppk = self.open()
        chunks: list[bytes] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                data = ppk.get_data()
                if data:
                    chunks.append(data)
                else:
                    time.sleep(0.002)

        try:
            started = time.monotonic()
            ppk.start_measuring()
            reader = threading.Thread(target=read, name="ppk2-reader", daemon=True)
            reader.start()
            time.sleep(IDLE_LEAD)
            window = run()
            time.sleep(TAIL)
            stop.set()
            reader.join(timeout=5)
            ppk.stop_measuring()
            time.sleep(0.01)
            chunks.append(ppk.get_data())
        finally:
            stop.set()
            ppk.ser.close()
        capture = self.decode(ppk, b"".join(chunks), started)
        return energy_from_capture(capture, window, f"PPK2 {self.spec.port}")

    def decode(self, ppk: Any, raw: bytes, started: float) -> Capture:
        """Samples in uA and the marker input, from the raw stream (ppk2-api's calibration math)."""
        raw = raw[: len(raw) // 4 * 4]
        if not raw:
            raise EnergyError(f"the PPK2 at {self.spec.port} streamed no samples")
        samples, bits = ppk.get_samples(raw)
        current = np.asarray(samples, dtype=np.float64)
        logic = np.asarray(bits, dtype=np.uint16)[: current.size]
        marker = (logic >> MARKER_CHANNEL) & 1 == 1
        return Capture(current_ua=current, rate_hz=SAMPLE_RATE, started=started, voltage=self.spec.voltage,
                       marker=marker)
