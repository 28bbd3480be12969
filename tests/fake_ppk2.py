"""A fake Nordic PPK2 on a pseudo-terminal, speaking the PPK2's serial protocol.

It answers GET_META_DATA with calibration metadata (``key: value`` lines ending
in ``END``), and between AVERAGE_START and AVERAGE_STOP streams 100 000 samples
per second, paced by the wall clock: little-endian u32, bits 0-13 the ADC value,
bits 14-16 the range, bits 24-31 the logic inputs. The current it streams is
whatever the test sets (``set(current_ua, marker)``), encoded by *inverting* the
calibration the driver must apply (ppk2-api's get_adc_result), so the driver's
figure can be checked against the charge the fake actually emitted.
"""

from __future__ import annotations

import math
import os
import threading
import time
import tty

SAMPLE_RATE = 100_000
ADC_MULT = 1.8 / 163840
#: calibration per range 0..4, deliberately not the defaults: offsets, gains and a
#: supply-dependent term that the driver must all apply
CAL = {
    "R": [1031.64, 101.65, 10.15, 0.94, 0.043],
    "GS": [0.02, 0.015, 0.01, 0.005, 0.001],
    "GI": [1.01, 0.98, 1.02, 1.0, 1.0],
    "O": [12.0, 24.0, 36.0, 48.0, 60.0],
    "S": [2e-7, 3e-7, 4e-7, 5e-7, 6e-7],
    "I": [1e-7, -2e-7, 3e-7, 0.0, 0.0],
    "UG": [1.0, 1.03, 0.97, 1.0, 1.0],
}
GET_META_DATA, AVERAGE_START, AVERAGE_STOP, REGULATOR_SET = 0x19, 0x06, 0x07, 0x0D


def metadata() -> bytes:
    lines = ["Calibrated: 0"]
    for key, values in CAL.items():
        lines += [f"{key}{i}: {v}" for i, v in enumerate(values)]
    lines += ["HW: 9173", "IA: 56", "END", ""]
    return "\n".join(lines).encode()


class FakePpk2:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.current_ua = 1000.0
        self.marker = False
        self.vdd_mv = 0
        self.streaming = False
        self.emitted: list[tuple[float, bool, int]] = []  # (current uA, marker, samples) as emitted
        self.commands: list[bytes] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve_commands, daemon=True).start()
        threading.Thread(target=self._stream, daemon=True).start()

    def set(self, current_ua: float, marker: bool) -> None:
        with self._lock:
            self.current_ua, self.marker = current_ua, marker

    def close(self) -> None:
        self._stop.set()
        time.sleep(0.02)
        os.close(self.master)
        os.close(self.slave)

    # ------------------------------------------------------------------ the protocol
    def _serve_commands(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                data = os.read(self.master, 64)
            except OSError:
                return
            pending += data
            while pending:
                opcode = pending[0]
                size = 3 if opcode == REGULATOR_SET else 2 if opcode in (0x0C, 0x11) else 1
                if len(pending) < size:
                    break
                command, pending = pending[:size], pending[size:]
                self.commands.append(command)
                if opcode == GET_META_DATA:
                    os.write(self.master, metadata())
                elif opcode == REGULATOR_SET:  # ppk2-api: [3 + (mV-800+32)//256, (mV-800+32)%256]
                    self.vdd_mv = (command[1] - 3) * 256 + command[2] + 800 - 32
                elif opcode == AVERAGE_START:
                    self.streaming = True
                elif opcode == AVERAGE_STOP:
                    self.streaming = False

    def encode(self, current_ua: float, marker: bool) -> bytes:
        """One sample whose calibrated value is ``current_ua`` (the inverse of get_adc_result)."""
        amps = current_ua * 1e-6
        for rng in range(5):
            gs, gi, ug = CAL["GS"][rng], CAL["GI"][rng], CAL["UG"][rng]
            c = CAL["S"][rng] * (self.vdd_mv / 1000) + CAL["I"][rng] - amps / ug
            x = (-gi + math.sqrt(gi * gi - 4 * gs * c)) / (2 * gs)  # result_without_gain
            adc = x * CAL["R"][rng] / ADC_MULT + CAL["O"][rng]
            raw = int(round(adc / 4))
            if 0 <= raw < 1 << 14:
                return (raw | rng << 14 | (1 if marker else 0) << 24).to_bytes(4, "little")
        raise ValueError(f"{current_ua} uA is outside the PPK2's ranges")

    def _stream(self) -> None:
        sent = 0
        t0 = None
        while not self._stop.is_set():
            if not self.streaming:
                t0, sent = None, 0
                time.sleep(0.001)
                continue
            now = time.monotonic()
            t0 = t0 or now
            due = int((now - t0) * SAMPLE_RATE) - sent
            if due > 0:
                with self._lock:
                    current, marker = self.current_ua, self.marker
                sample = self.encode(current, marker)
                try:
                    os.write(self.master, sample * due)
                except OSError:
                    return
                self.emitted.append((current, marker, due))
                sent += due
            time.sleep(0.001)

    def emitted_marker_charge_uc(self, idle_ua: float) -> tuple[float, int]:
        """(the excess charge in uC it emitted while the marker was high, samples high)."""
        high = [(c, n) for c, m, n in self.emitted if m]
        return sum((c - idle_ua) * n for c, n in high) / SAMPLE_RATE, sum(n for _, n in high)
