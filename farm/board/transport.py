"""Byte transports to a board's console, chosen by URL (pyserial's scheme).

``socket://host:port`` (an emulator's UART on TCP), ``/dev/ttyACM0`` or
``/dev/serial/by-id/...`` (a local USB serial port), ``loop://`` (tests). The
transport only moves bytes; framing is farm.board.protocol's job.
"""

from __future__ import annotations

import time
from typing import Protocol

import serial  # pyserial


class Transport(Protocol):
    url: str

    def write(self, data: bytes) -> None: ...

    def read_some(self, timeout: float) -> bytes: ...

    def close(self) -> None: ...


class SerialTransport:
    """pyserial-backed transport; works for real ports and socket:// URLs alike."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        self.url = url
        self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)

    def write(self, data: bytes) -> None:
        self._port.write(data)
        self._port.flush()

    def read_some(self, timeout: float) -> bytes:
        """Whatever arrives within ``timeout`` seconds (returns early on data)."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = self._port.in_waiting
            data = self._port.read(max(1, min(waiting, 4096)))
            if data or time.monotonic() >= deadline:
                return bytes(data)

    def close(self) -> None:
        self._port.close()


def open_transport(url: str, baudrate: int = 115200, connect_timeout: float = 10.0) -> SerialTransport:
    """Open ``url``, retrying while an emulator is still starting to listen."""
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            return SerialTransport(url, baudrate)
        except serial.SerialException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
