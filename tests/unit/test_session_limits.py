"""The session learns the device's frame limit from its identity and chunks to fit."""

from __future__ import annotations

import struct

import pytest

from farm.board.protocol import MAX_PAYLOAD, Frame, FrameDecoder, MsgType, device_max_payload, encode
from farm.board.session import DeviceHung, DeviceRefused, Session


class FakeBoard:
    """A transport that answers like the harness: READY, then LOAD_INPUT/READ_OUTPUT."""

    url = "fake://"

    def __init__(self, max_payload: int | None, size: int = 300) -> None:
        ident = b"board=fake\n" + (f"max_payload={max_payload}\n".encode() if max_payload else b"")
        self.limit = max_payload or MAX_PAYLOAD
        self.out = bytearray(encode(MsgType.READY, ident))
        self.memory = bytearray(size)
        self.requests: list[Frame] = []
        self._decoder = FrameDecoder()

    def write(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            assert len(frame.payload) <= self.limit, f"frame of {len(frame.payload)} bytes > {self.limit}"
            self.requests.append(frame)
            if frame.type == MsgType.LOAD_INPUT:
                (offset,) = struct.unpack_from("<I", frame.payload)
                self.memory[offset : offset + len(frame.payload) - 4] = frame.payload[4:]
                self.out += encode(MsgType.LOAD_INPUT | 0x80, b"\x00")
            elif frame.type == MsgType.READ_OUTPUT:
                offset, n = struct.unpack("<IH", frame.payload)
                self.out += encode(MsgType.READ_OUTPUT | 0x80, b"\x00" + bytes(self.memory[offset : offset + n]))

    def read_some(self, timeout: float) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data

    def close(self) -> None:
        pass


@pytest.mark.parametrize("limit", [None, 64, 512])
def test_chunks_fit_the_announced_limit(limit):
    board = FakeBoard(limit, size=1500)
    session = Session(board, timeout=1)
    assert session.wait_ready()["board"] == "fake"
    assert session.max_payload == (limit or MAX_PAYLOAD)
    data = bytes(i % 251 for i in range(1500))
    session.load_input(data)
    assert bytes(board.memory) == data
    assert session.read_output(1500) == data
    sizes = [len(f.payload) for f in board.requests if f.type == MsgType.LOAD_INPUT]
    assert max(sizes) == (limit or MAX_PAYLOAD) and len(sizes) == -(-1500 // ((limit or MAX_PAYLOAD) - 4))


def test_malformed_limit_is_refused():
    assert device_max_payload({}) == MAX_PAYLOAD
    with pytest.raises(ValueError, match="expected 8..1024"):
        device_max_payload({"max_payload": "4096"})
    board = FakeBoard(None)
    board.out = bytearray(encode(MsgType.READY, b"max_payload=lots\n"))
    with pytest.raises(DeviceRefused, match="malformed max_payload='lots'"):
        Session(board, timeout=1).wait_ready()


def test_lost_connection_is_a_hang_not_a_crash():
    class Gone(FakeBoard):
        def read_some(self, timeout: float) -> bytes:
            raise OSError("socket disconnected")

    with pytest.raises(DeviceHung, match="lost the connection while waiting for boot"):
        Session(Gone(None), timeout=1).wait_ready()


def test_the_input_the_board_holds_is_not_sent_again_until_it_may_have_lost_it():
    board = FakeBoard(64, size=300)
    session = Session(board, timeout=1)
    session.wait_ready()
    data = bytes(i % 251 for i in range(300))

    def loads() -> int:
        return sum(1 for f in board.requests if f.type == MsgType.LOAD_INPUT)

    session.load_input(data)
    sent = loads()
    assert sent == -(-300 // 60)
    session.load_input(bytes(data))  # equal bytes: the harness's staging buffer has them
    assert loads() == sent
    session.load_input(data[::-1])  # other bytes: sent
    assert loads() == 2 * sent and bytes(board.memory) == data[::-1]
    board.out += encode(MsgType.READY, b"board=fake\nmax_payload=64\n")  # the board booted again
    assert session.read_output(4) == data[::-1][:4]  # the READY frame passes by on the way
    session.load_input(data[::-1])  # its staging buffer is gone: sent again
    assert loads() == 3 * sent


def test_a_load_that_fails_part_way_is_sent_whole_next_time():
    board = FakeBoard(64, size=300)
    session = Session(board, timeout=1)
    session.wait_ready()
    data = bytes(range(200))
    real_write = board.write
    calls = {"n": 0}

    def failing_write(frame: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("cable pulled")
        real_write(frame)

    board.write = failing_write  # type: ignore[method-assign]
    with pytest.raises(DeviceHung):
        session.load_input(data)
    board.write = real_write  # type: ignore[method-assign]
    before = sum(1 for f in board.requests if f.type == MsgType.LOAD_INPUT)
    session.load_input(data)
    assert sum(1 for f in board.requests if f.type == MsgType.LOAD_INPUT) - before == -(-200 // 60)
    assert bytes(board.memory[:200]) == data
