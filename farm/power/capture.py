"""Measuring power monitors (Nordic PPK2, Joulescope) and the energy math they share.

A monitor records current while the board runs ``count`` inferences (a
:class:`~farm.power.monitor.RunWindow`) and hands back a :class:`Capture`. Energy per
inference is the integral of the current over the inference window minus the
idle current, times the supply voltage, divided by the count:

* **GPIO marker** (preferred): the harness raises a pin around its timed model
  loop (``board_marker`` in board.h); wired to the monitor's logic input, the
  samples where it is high are exactly the inference window.
* **timed window** (no marker seen): the excess current is the mean over the RUN
  request (host-timed, so approximate) minus idle, applied for the duration the
  board itself timed for its model loop.

Idle is the median current of the samples outside the window, recorded before
the RUN was sent. Every figure says which monitor measured it and how.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from farm.power.monitor import EnergyError, EnergyFigure, RunWindow

#: seconds recorded before the RUN (the idle reference) and after its answer
IDLE_LEAD = 0.2
TAIL = 0.05
#: inferences per energy window: enough for a window well above the monitor's sample period
ENERGY_INFERENCES = 64


@dataclass
class Capture:
    current_ua: np.ndarray  # one sample per 1 / rate_hz seconds, in microamperes
    rate_hz: float
    started: float  # time.monotonic() of sample 0 (approximately: when streaming was asked for)
    voltage: float  # the supply voltage, volts
    marker: np.ndarray | None = None  # True where the GPIO marker was high; None: no logic input


def energy_from_capture(capture: Capture, window: RunWindow, monitor: str) -> EnergyFigure:
    """Energy per inference of ``window.count`` inferences recorded in ``capture``."""
    current = np.asarray(capture.current_ua, dtype=np.float64)
    if current.size == 0:
        raise EnergyError(f"{monitor} recorded no samples")
    if window.count <= 0:
        raise EnergyError("the energy window ran no inferences")
    marker = capture.marker
    if marker is not None and np.any(marker):
        inside = np.asarray(marker, dtype=bool)
        outside = current[~inside]
        if outside.size == 0:
            raise EnergyError(f"{monitor}: the GPIO marker was high for the whole capture; no idle reference")
        idle = float(np.median(outside))
        charge_uc = float(np.sum(current[inside] - idle)) / capture.rate_hz  # uA * s = uC
        how = (f"GPIO marker window {inside.sum() / capture.rate_hz * 1e3:.2f} ms, "
               f"idle {idle:.1f} uA subtracted")
    else:
        first = int(round((window.started - capture.started) * capture.rate_hz))
        last = int(round((window.finished - capture.started) * capture.rate_hz))
        first, last = max(first, 0), min(last, current.size)
        if last <= first or first == 0:
            raise EnergyError(f"{monitor}: the RUN request is not inside the capture "
                              f"(samples {first}..{last} of {current.size})")
        idle = float(np.median(current[:first]))
        seconds = window.loop_seconds if window.loop_seconds else (window.finished - window.started)
        charge_uc = (float(np.mean(current[first:last])) - idle) * seconds
        how = (f"timed window (no GPIO marker seen): mean current over the RUN request minus idle "
               f"{idle:.1f} uA, for the board-timed {seconds * 1e3:.2f} ms; approximate")
    energy_uj = charge_uc * capture.voltage / window.count  # uC * V = uJ
    return EnergyFigure(energy_uj=energy_uj,
                        source=f"measured: {monitor} at {capture.voltage:g} V, {window.count} inferences, {how}")


def energy_window(session: Any, identity: dict[str, str], count: int = ENERGY_INFERENCES,
                  timeout: float = 60.0) -> RunWindow:
    """Run ``count`` inferences on the board for a monitor to record (the input is loaded)."""
    started = time.monotonic()
    session.run(count, timeout=timeout)
    finished = time.monotonic()
    timing = session.read_timing()
    timer_hz = int(identity.get("timer_hz", "0") or 0)
    loop_seconds = timing.loop_ticks / timer_hz if timer_hz else None
    return RunWindow(count=count, started=started, finished=finished, loop_seconds=loop_seconds)
