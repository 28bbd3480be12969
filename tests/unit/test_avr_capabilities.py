"""The 8-bit AVR in the capability model, the inventory, the count unit and the checks.

No firmware build, no emulator: the facts the other stages read (core avr: no FPU, no
DSP, 16-bit int; simavr machines count cycles), the converter from the harness's
Timer1 windows to cycles, avr-libc's soft-float helper names and the AVR fault frame.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.board.faults import decode_fault
from farm.board.protocol import Timing
from farm.board.simavr import avr_cycles_per_inference
from farm.config.capabilities import CORES, COUNT_SOURCE, MACHINES, Core, EmulatorKind, Fpu, count_unit
from farm.config.inventory import InventoryError, load_inventory
from farm.config.machine_flags import machine_flags
from farm.preflight.isa_rules import is_softfloat_helper
from farm.store.status import Unit

FIRMWARE = Path(__file__).resolve().parents[2] / "farm" / "firmware"

MEGA = """\
devices:
  - name: avr-mega2560
    core: avr
    fpu: {fpu}
    dsp: false
    clock_hz: 16000000
    flash_bytes: 262144
    ram_bytes: 8192
    board: simavr-atmega2560
    emulator:
      kind: simavr
      machine: {machine}
"""


def test_the_avr_core_has_no_fpu_no_dsp_and_a_16_bit_int():
    info = CORES[Core.AVR]
    assert info.family == "avr" and info.fpu_options == (Fpu.NONE,) and not info.dsp_possible
    assert info.int_bits == 16 and CORES[Core.CORTEX_M4].int_bits == 32
    flags = machine_flags("avr", "none", False)
    assert (flags.arch, flags.float_abi, flags.flags) == ("avr", "soft", ())  # -mmcu comes from the board file


def test_simavr_machines_count_cycles_and_have_board_files():
    machines = MACHINES[EmulatorKind.SIMAVR]
    assert set(machines) == {"atmega2560", "atmega1284p"}
    for machine, info in machines.items():
        assert info.core is Core.AVR and info.unit is Unit.CYCLES
        assert (FIRMWARE / "platform" / "boards" / f"{info.board}.json").is_file(), machine
    assert COUNT_SOURCE[EmulatorKind.SIMAVR] == "simavr, cycle-accurate AVR core"
    assert all(info.unit is Unit.INSTRUCTIONS for info in MACHINES[EmulatorKind.QEMU].values())


def test_an_avr_device_loads_and_its_unit_is_cycles_not_an_estimate(tmp_path: Path):
    path = tmp_path / "devices.yaml"
    path.write_text(MEGA.format(fpu="none", machine="atmega2560"))
    device = load_inventory(path).device("avr-mega2560")
    assert device.is_emulated and count_unit(device) is Unit.CYCLES and device.unit == "cycles"
    assert not Unit.CYCLES.latency_is_estimate


def test_an_fpu_on_the_avr_and_a_wrong_machine_are_named_with_the_line(tmp_path: Path):
    path = tmp_path / "devices.yaml"
    path.write_text(MEGA.format(fpu="sp", machine="atmega328p"))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    text = str(info.value)
    assert f"{path}:4: devices[0].fpu: avr (avr) has no FPU; expected fpu: none" in text
    assert "devices[0].emulator.machine: unknown simavr machine 'atmega328p'; expected one of atmega1284p, " \
           "atmega2560" in text


def test_the_timer_windows_become_exact_cycles_with_the_empty_model_added_back():
    identity = {"null_invoke_cycles": "8", "timer": "timer1", "timer_hz": "16000000"}
    # 8 inferences of 42,218 cycles more than the empty model, whose 8 cycles are added back
    timing = Timing(count=8, total_ticks=0, min_ticks=0, max_ticks=0, loop_ticks=1_000_000 + 8 * 42_218,
                    null_loop_ticks=1_000_000)
    assert avr_cycles_per_inference(timing, identity) == 42_226.0
    odd = Timing(count=2, total_ticks=0, min_ticks=0, max_ticks=0, loop_ticks=101, null_loop_ticks=0)
    assert avr_cycles_per_inference(odd, identity) == 58.5  # never rounded away


@pytest.mark.parametrize("name", ["__addsf3", "__subsf3", "__mulsf3", "__divsf3", "__fixsfsi", "__fixunssfsi",
                                  "__floatsisf", "__floatunsisf", "__cmpsf2", "__gtsf2", "__unordsf2",
                                  "__fp_split3", "__fp_round", "__fp_pscA", "__mulsf3x", "__mulsf3_pse"])
def test_avr_libc_soft_float_helpers_are_recognised(name: str):
    assert is_softfloat_helper(name)


@pytest.mark.parametrize("name", ["__mulsi3", "__divmodsi4", "__umulhisi3", "__muldi3", "__ashldi3",
                                  "fully_connected_s8", "__do_copy_data"])
def test_avr_integer_helpers_are_not_soft_float(name: str):
    assert not is_softfloat_helper(name)


def test_the_avr_fault_frame_is_decoded():
    report = decode_fault((3, 1, 0x21F0), None)
    assert report.kind == "bad interrupt"
    assert report.sentence == "an interrupt without a handler (avr-libc's BADISR_vect), stack pointer 0x21f0"
    assert report.registers == {"cause": 1, "sp": 0x21F0}
