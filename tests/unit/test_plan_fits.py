"""A model too big for a 16-bit-size_t core (AVR) is refused before building, with the bytes
needed and available from its memory plan; the compiler's "size of array is too large" is a
does-not-fit sentence too; a 32-bit core is left to the linker's exact figure."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from farm.build.fits import DoesNotFit
from farm.build.plan_fits import check_plan_fits, max_object_bytes, object_too_large
from farm.config.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def boards():
    return {d.name: d for d in load_inventory(REPO / "devices.yaml").devices}


def test_the_object_limit_comes_from_the_cores_int_width(boards):
    assert max_object_bytes(boards["avr-mega2560"].core) == 32_767
    assert max_object_bytes(boards["qemu-m3"].core) is None and max_object_bytes(boards["qemu-rv32"].core) is None


def test_an_arena_too_big_for_the_avr_is_refused_before_building_with_the_numbers(boards):
    plan = SimpleNamespace(arena_bytes=37_264, input_bytes=27_648)
    with pytest.raises(DoesNotFit) as info:
        check_plan_fits(boards["avr-mega2560"], plan)
    assert str(info.value) == ("RAM: needs at least 64912 bytes (arena 37264 + input buffer 27648), avr-mega2560 "
                               "has 8192 (from the memory plan, before building)")
    check_plan_fits(boards["avr-1284p"], SimpleNamespace(arena_bytes=9_000, input_bytes=784))  # fits 16 KiB
    check_plan_fits(boards["qemu-rv32"], plan)  # 32-bit: the linker says the exact bytes


def test_the_compilers_too_large_array_is_a_sentence_with_its_bytes(tmp_path: Path, boards):
    (tmp_path / "model.c").write_text("#include <stdint.h>\n\nstatic const int8_t op24_packed[40000] = {0};\n")
    log = ("Compiling .pio/build/farm/src/model.o\n"
           "src/model.c:3:21: error: size of array 'op24_packed' is too large\n")
    sentence = object_too_large(log, tmp_path, boards["avr-1284p"])
    assert sentence == ("array op24_packed: needs 40000 bytes in one object, the avr compiler allows at most 32767 "
                        "bytes (its size_t); avr-1284p cannot hold the model as built")
    assert object_too_large("region `RAM' overflowed by 10 bytes", tmp_path, boards["avr-1284p"]) is None


def test_the_error_is_found_in_the_build_log_when_the_message_keeps_only_its_tail(tmp_path: Path, boards):
    (tmp_path / "model.c").write_text("#include <stdint.h>\n\nstatic const float tensor19[81920] = {0};\n")
    log = tmp_path / "build.log"
    log.write_text("src/model.c:3:34: error: size of array \u2018tensor19\u2019 is too large\n"
                   + "warning: unused\n" * 50, encoding="utf-8")
    message = f"PlatformIO build for board simavr-atmega2560 failed (log: {log}):\n" + "warning: unused\n" * 5
    sentence = object_too_large(message, tmp_path, boards["avr-mega2560"])
    assert sentence is not None and sentence.startswith("array tensor19: needs 327680 bytes in one object")
