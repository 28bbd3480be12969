"""A protocol session with one board: identify, load input, run, read output and timing.

Every request waits for its response frame; an unsolicited FAULT frame from the
board's fault handler raises :class:`DeviceFault` with the decoded registers, and
silence past the timeout raises :class:`DeviceHung` — a board never hangs the run.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from farm.board.protocol import (
    MAX_PAYLOAD,
    RESPONSE,
    Frame,
    FrameDecoder,
    MsgType,
    Status,
    Timing,
    device_max_payload,
    encode,
    parse_identity,
    parse_timing,
)
from farm.board.transport import Transport


class DeviceError(RuntimeError):
    """The board did not do what was asked."""


class DeviceHung(DeviceError):
    """The board stopped answering within the timeout."""


class DeviceFault(DeviceError):
    """The board's fault handler reported a CPU fault (registers in ``words``)."""

    def __init__(self, words: tuple[int, ...]) -> None:
        self.words = words
        super().__init__(f"board faulted: registers {[hex(w) for w in words]}")


class DeviceRefused(DeviceError):
    """The harness answered with an error status."""


@dataclass
class Session:
    transport: Transport
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self._decoder = FrameDecoder()
        self._pending: list[Frame] = []
        #: the device's frame limit, learnt from its identity (READY or IDENTIFY)
        self.max_payload = MAX_PAYLOAD
        #: the input the harness holds in its staging buffer (None: unknown), see load_input
        self._staged: bytes | None = None

    # -- framing -----------------------------------------------------------
    def _next_frame(self, timeout: float, waiting_for: str) -> Frame:
        deadline = time.monotonic() + timeout
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceHung(f"no answer to {waiting_for} within {timeout:.1f} s")
            try:
                data = self.transport.read_some(min(left, 0.5))
            except OSError as exc:  # pyserial's SerialException included: the board went away
                raise DeviceHung(f"lost the connection while waiting for {waiting_for}: {exc}") from None
            self._pending.extend(self._decoder.feed(data))
        frame = self._pending.pop(0)
        if frame.type in (MsgType.READY, MsgType.FAULT):  # the board (re)booted or stopped: its input is gone
            self._staged = None
        if frame.type == MsgType.FAULT:
            count = len(frame.payload) // 4
            raise DeviceFault(struct.unpack(f"<{count}I", frame.payload[: 4 * count]))
        return frame

    def _request(self, msg_type: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        name = MsgType(msg_type).name if msg_type in MsgType._value2member_map_ else f"request 0x{msg_type:02x}"
        try:
            self.transport.write(encode(msg_type, payload))
        except OSError as exc:
            raise DeviceHung(f"lost the connection when sending {name}: {exc}") from None
        want = msg_type | RESPONSE
        while True:
            frame = self._next_frame(timeout or self.timeout, name)
            if frame.type == want:
                return frame.payload
            if frame.type == MsgType.ERROR:
                status = frame.payload[0] if frame.payload else -1
                text = frame.payload[1:].decode("ascii", errors="replace")
                raise DeviceRefused(f"{name} refused: status {status}: {text}")
            # READY or a stale response: not ours, keep waiting

    # -- requests ----------------------------------------------------------
    def wait_ready(self, timeout: float | None = None) -> dict[str, str]:
        """The identity the harness announces at boot."""
        while True:
            frame = self._next_frame(timeout or self.timeout, "boot (READY)")
            if frame.type == MsgType.READY:
                return self._learn(parse_identity(frame.payload))

    def identify(self) -> dict[str, str]:
        return self._learn(parse_identity(self._request(MsgType.IDENTIFY)))

    def _learn(self, identity: dict[str, str]) -> dict[str, str]:
        try:
            self.max_payload = device_max_payload(identity)
        except ValueError as exc:
            raise DeviceRefused(str(exc)) from None
        return identity

    def ping(self, payload: bytes) -> bytes:
        return self._request(MsgType.PING, payload)

    def load_input(self, data: bytes) -> None:
        """Put ``data`` in the harness's input staging buffer, in frames of the device's limit.

        Not sent again when the board already holds exactly these bytes from this session's
        last load: the harness copies the staged input into the model's before every inference
        and never writes the staging buffer otherwise (main.c), so the timed sample, loaded
        again as the first test sample, costs no second transfer (on an emulator's UART the
        transfer is most of a large model's measurement). A board that boots again or faults
        has lost it; a load that fails part-way leaves it unknown."""
        if self._staged is not None and data == self._staged:
            return
        self._staged = None
        chunk = self.max_payload - 4
        for offset in range(0, max(len(data), 1), chunk):
            reply = self._request(MsgType.LOAD_INPUT, struct.pack("<I", offset) + data[offset : offset + chunk])
            self._check(reply, "LOAD_INPUT")
        self._staged = bytes(data)

    def run(self, count: int, timeout: float | None = None) -> None:
        reply = self._request(MsgType.RUN, struct.pack("<I", count), timeout)
        status, kernel_status = struct.unpack("<Bi", reply)
        if status != Status.OK:
            raise DeviceRefused(f"RUN failed: model_invoke returned kernel status {kernel_status}")

    def read_output(self, size: int) -> bytes:
        out = bytearray()
        chunk = self.max_payload - 1
        while len(out) < size:
            n = min(chunk, size - len(out))
            reply = self._request(MsgType.READ_OUTPUT, struct.pack("<IH", len(out), n))
            self._check(reply, "READ_OUTPUT")
            out.extend(reply[1:])
        return bytes(out)

    def read_timing(self) -> Timing:
        return parse_timing(self._request(MsgType.READ_TIMING))

    @staticmethod
    def _check(reply: bytes, what: str) -> None:
        if not reply or reply[0] != Status.OK:
            raise DeviceRefused(f"{what} failed with status {reply[0] if reply else 'none'}")
