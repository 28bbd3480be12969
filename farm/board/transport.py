"""Byte transports to a board's console, chosen by URL (pyserial's scheme).

``socket://host:port`` (an emulator's UART on TCP: :class:`SocketTransport`, a plain TCP
client), ``/dev/ttyACM0`` or ``/dev/serial/by-id/...`` (a local USB serial port),
``loop://`` (tests): :class:`SerialTransport` (pyserial). pyserial's own ``socket://``
handler is not used: opening it drains what already arrived, and an emulator that starts
its guest when the farm connects (QEMU's ``wait=on``, the simavr runner) can have sent its
boot banner by then. The transport only moves bytes; framing is farm.board.protocol's job.
"""

from __future__ import annotations

import socket
import time
from typing import Protocol
from urllib.parse import urlsplit

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


class SocketTransport:
    """An emulator's UART on TCP (``socket://host:port``): every byte the board sends is kept,
    from the moment the connection is made."""

    def __init__(self, url: str) -> None:
        self.url = url
        where = urlsplit(url)
        if where.scheme != "socket" or not where.hostname or where.port is None:
            raise ValueError(f"{url}: expected socket://host:port")
        try:
            self._socket = socket.create_connection((where.hostname, where.port), timeout=5.0)
        except OSError as exc:
            raise serial.SerialException(f"could not open port {url}: {exc}") from exc
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self._socket.sendall(data)
        except OSError as exc:
            raise serial.SerialException(f"{self.url}: write failed: {exc}") from exc

    def read_some(self, timeout: float) -> bytes:
        """Whatever arrives within ``timeout`` seconds (returns early on data)."""
        self._socket.settimeout(max(timeout, 0.001))  # 0 would make the socket non-blocking
        try:
            data = self._socket.recv(4096)
        except (TimeoutError, BlockingIOError):
            return b""
        except OSError as exc:
            raise serial.SerialException(f"{self.url}: read failed: {exc}") from exc
        if not data:
            raise serial.SerialException(f"{self.url}: the board closed the connection")
        return data

    def close(self) -> None:
        self._socket.close()


def open_transport(url: str, baudrate: int = 115200,
                   connect_timeout: float = 10.0) -> SerialTransport | SocketTransport:
    """Open ``url``, retrying while an emulator is still starting to listen."""
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            if url.startswith("socket://"):
                return SocketTransport(url)
            return SerialTransport(url, baudrate)
        except serial.SerialException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
