"""Host side of the harness's framed binary protocol (farm/firmware/lib/harness/include/protocol.h).

Frame: ``0xA5 0x5A | len u16 LE | type u8 | payload | crc16 LE``, CRC-16/CCITT-FALSE
over len, type and payload. :class:`FrameDecoder` is fed raw bytes and yields
frames; garbage and frames with a bad CRC are skipped (counted), so a session
resynchronizes after line noise or a board that printed something else.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

SYNC = b"\xa5\x5a"
#: the largest payload this host sends or accepts; a device may announce a smaller
#: limit in its identity (``max_payload=``, see :func:`device_max_payload`)
MAX_PAYLOAD = 1024
RESPONSE = 0x80


class MsgType(enum.IntEnum):
    IDENTIFY = 0x01
    LOAD_INPUT = 0x02
    RUN = 0x03
    READ_OUTPUT = 0x04
    READ_TIMING = 0x05
    PING = 0x06
    READY = 0x7E
    FAULT = 0x7F
    ERROR = 0xFF


class Status(enum.IntEnum):
    OK = 0
    UNKNOWN_TYPE = 1
    BAD_LENGTH = 2
    OUT_OF_RANGE = 3
    KERNEL = 4
    NO_TIMING = 5


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes


def encode(msg_type: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte frame limit")
    body = struct.pack("<HB", len(payload), msg_type) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


@dataclass
class FrameDecoder:
    """Incremental decoder; ``feed`` returns the complete frames found so far."""

    max_payload: int = MAX_PAYLOAD
    _buffer: bytearray = field(default_factory=bytearray)
    skipped_bytes: int = 0
    bad_frames: int = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.extend(data)
        frames: list[Frame] = []
        while True:
            start = self._buffer.find(SYNC)
            if start < 0:
                # keep a trailing 0xA5: it may be the first half of a sync pair
                keep = 1 if self._buffer.endswith(SYNC[:1]) else 0
                self.skipped_bytes += len(self._buffer) - keep
                del self._buffer[: len(self._buffer) - keep]
                return frames
            if start:
                self.skipped_bytes += start
                del self._buffer[:start]
            if len(self._buffer) < 5:
                return frames
            length, msg_type = struct.unpack_from("<HB", self._buffer, 2)
            if length > self.max_payload:
                self._drop_one()
                continue
            total = 5 + length + 2
            if len(self._buffer) < total:
                return frames
            body = bytes(self._buffer[2 : 5 + length])
            (crc,) = struct.unpack_from("<H", self._buffer, 5 + length)
            if crc != crc16(body):
                self.bad_frames += 1
                self._drop_one()
                continue
            frames.append(Frame(msg_type, body[3:]))
            del self._buffer[:total]

    def _drop_one(self) -> None:
        """Not a frame after all: skip this sync byte and hunt for the next."""
        self.skipped_bytes += 1
        del self._buffer[:1]


@dataclass(frozen=True)
class Timing:
    """Raw ticks of the board timer over the last RUN of ``count`` inferences.

    ``total/min/max_ticks``: the per-inference windows (timer overhead included).
    ``loop_ticks``: the whole timed loop running the model; ``null_loop_ticks``:
    the identical loop running an empty model (see timed_loop in main.c).
    """

    count: int
    total_ticks: int
    min_ticks: int
    max_ticks: int
    loop_ticks: int = 0
    null_loop_ticks: int = 0
    #: the painted stack's high-water mark since boot and the stack reserved, in bytes
    #: (measured on the board, farm/firmware/lib/harness/include/stack_paint.h); None from a
    #: harness that does not paint its stack (AVR, the Arduino layer, an older firmware)
    stack_used_bytes: int | None = None
    stack_size_bytes: int | None = None


_TIMING = struct.Struct("<BIQQQQQ")
_STACK = struct.Struct("<II")


def parse_timing(payload: bytes) -> Timing:
    """READ_TIMING's answer: the timing fields, then the stack fields when the harness sends
    them (a shorter, older answer has none; fields a later harness appends are ignored)."""
    if len(payload) < _TIMING.size:
        raise ValueError(f"timing answer of {len(payload)} bytes; expected at least {_TIMING.size}")
    status, count, total, lo, hi, loop, null_loop = _TIMING.unpack_from(payload)
    if status != Status.OK:
        raise ValueError(f"timing status {status}")
    used = reserved = None
    if len(payload) >= _TIMING.size + _STACK.size:
        used, reserved = _STACK.unpack_from(payload, _TIMING.size)
    return Timing(count, total, lo, hi, loop, null_loop, used, reserved)


def parse_identity(payload: bytes) -> dict[str, str]:
    text = payload.decode("ascii", errors="replace")
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def device_max_payload(identity: dict[str, str]) -> int:
    """The largest payload the device accepts, from its identity text (a harness
    that does not announce one has the protocol's default, 1024)."""
    text = identity.get("max_payload")
    if text is None:
        return MAX_PAYLOAD
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"device identity has a malformed max_payload={text!r}") from None
    if not 8 <= value <= MAX_PAYLOAD:
        raise ValueError(f"device identity announces max_payload={value}; expected 8..{MAX_PAYLOAD}")
    return value
