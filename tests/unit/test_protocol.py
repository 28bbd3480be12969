from __future__ import annotations

import random

import pytest

from farm.board.protocol import MAX_PAYLOAD, Frame, FrameDecoder, MsgType, crc16, encode, parse_identity


def test_crc16_ccitt_false_check_value():
    # the catalogue check value of CRC-16/CCITT-FALSE
    assert crc16(b"123456789") == 0x29B1


def test_roundtrip_single_frame():
    frame = encode(MsgType.PING, b"hello")
    assert frame[:2] == b"\xa5\x5a"
    assert FrameDecoder().feed(frame) == [Frame(MsgType.PING, b"hello")]


def test_frames_split_across_reads():
    data = encode(MsgType.RUN, b"\x01\x00\x00\x00") + encode(MsgType.IDENTIFY)
    decoder = FrameDecoder()
    frames = []
    for i in range(len(data)):
        frames += decoder.feed(data[i : i + 1])
    assert [f.type for f in frames] == [MsgType.RUN, MsgType.IDENTIFY]


def test_resynchronizes_after_garbage_and_false_sync():
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(300)) + b"\xa5\x5a\xff\x7f"  # false sync, huge length
    good = encode(MsgType.PING, b"after garbage")
    decoder = FrameDecoder()
    frames = decoder.feed(garbage + good)
    assert frames[-1] == Frame(MsgType.PING, b"after garbage")
    assert decoder.skipped_bytes > 0


def test_corrupted_frame_is_dropped_and_next_one_kept():
    bad = bytearray(encode(MsgType.PING, b"abc"))
    bad[6] ^= 0xFF  # flip a payload byte: CRC no longer matches
    good = encode(MsgType.PING, b"def")
    decoder = FrameDecoder()
    assert decoder.feed(bytes(bad) + good) == [Frame(MsgType.PING, b"def")]
    assert decoder.bad_frames == 1


def test_payload_limit_enforced():
    with pytest.raises(ValueError, match="exceeds"):
        encode(MsgType.LOAD_INPUT, bytes(MAX_PAYLOAD + 1))


def test_identity_parsing():
    assert parse_identity(b"board=mps2-an385\ntimer_hz=25000000\n") == {
        "board": "mps2-an385", "timer_hz": "25000000"}
