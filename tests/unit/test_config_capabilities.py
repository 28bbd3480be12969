"""The capability table is the one truth about cores and emulated machines: every
machine it lists has a board file and a QEMU binary, a machine without them does
not validate, and :func:`count_unit` alone decides cycles or instructions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from farm.config.capabilities import (
    CORES,
    EMULATED_MACHINES,
    MACHINES,
    Core,
    EmulatorKind,
    UnknownMachineError,
    count_unit,
    qemu_binary,
)
from farm.config.inventory import InventoryError, load_inventory
from farm.store.status import Unit

REPO = Path(__file__).resolve().parents[2]
BOARDS = REPO / "farm" / "firmware" / "platform" / "boards"


@pytest.mark.parametrize("machine", sorted(MACHINES[EmulatorKind.QEMU]))
def test_every_listed_machine_has_a_board_file_for_its_core(machine: str) -> None:
    info = MACHINES[EmulatorKind.QEMU][machine]
    board = json.loads((BOARDS / f"{info.board}.json").read_text())
    assert board["build"]["mcu"] == machine
    assert board["build"]["arch"] == CORES[info.core].family
    assert board["build"]["cpu"] in (str(info.core), CORES[info.core].isa)
    assert board["upload"]["protocol"] == "qemu"
    assert qemu_binary(machine) == info.binary and info.binary.startswith("qemu-system-")


def test_every_qemu_board_file_is_a_listed_machine() -> None:
    boards = {info.board for info in MACHINES[EmulatorKind.QEMU].values()}
    for path in BOARDS.glob("*.json"):
        if json.loads(path.read_text())["upload"].get("protocol") == "qemu":
            assert path.stem in boards, f"{path.name} is a QEMU board the capability table does not list"


def test_inventory_view_is_the_same_table() -> None:
    assert dict(EMULATED_MACHINES[EmulatorKind.QEMU]) == {
        "mps2-an385": Core.CORTEX_M3, "mps2-an386": Core.CORTEX_M4, "sifive_e": Core.RV32IMAC,
    }  # fmt: skip


def test_unknown_machine_names_the_known_ones() -> None:
    with pytest.raises(UnknownMachineError, match=r"no QEMU binary known for machine 'mps2-an500' \(known: \["):
        qemu_binary("mps2-an500")


@pytest.mark.parametrize("machine", ["mps2-an500", "mps2-an505"])
def test_machine_without_board_file_does_not_validate(tmp_path: Path, machine: str) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(textwrap.dedent(f"""\
        devices:
          - name: m7
            core: cortex-m7
            fpu: dp
            dsp: true
            clock_hz: 25000000
            flash_bytes: 4194304
            ram_bytes: 4194304
            board: qemu-{machine}
            emulator: {{kind: qemu, machine: {machine}}}
        """))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.issues[0].message == (
        f"unknown qemu machine {machine!r}; expected one of mps2-an385, mps2-an386, sifive_e (device m7)"
    )


def test_count_unit_is_instructions_for_emulators_and_cycles_for_silicon() -> None:
    inventory = load_inventory(REPO / "devices.yaml")
    # QEMU counts instructions; simavr's cycle-accurate AVR core counts cycles
    expected = {d.name: Unit.CYCLES if d.name.startswith("avr-") else Unit.INSTRUCTIONS for d in inventory.devices}
    assert {d.name: count_unit(d) for d in inventory.devices} == expected
    assert {d.name: d.unit for d in inventory.devices} == expected
    assert Unit.CYCLES in expected.values() and Unit.INSTRUCTIONS in expected.values()
    bench = load_inventory(REPO / "examples" / "devices-bench.yaml")
    assert {count_unit(d) for d in bench.devices} == {Unit.CYCLES}


def test_count_unit_of_a_serial_board_flashed_by_qemu_is_instructions(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(textwrap.dedent("""\
        devices:
          - name: qemu-serial
            core: cortex-m3
            fpu: none
            dsp: false
            clock_hz: 25000000
            flash_bytes: 4194304
            ram_bytes: 4194304
            board: qemu-mps2-an385
            serial: {port: /tmp/qemu-uart}
            flash: {protocol: qemu, machine: mps2-an385}
        """))
    device = load_inventory(path).device("qemu-serial")
    assert not device.is_emulated and count_unit(device) is Unit.INSTRUCTIONS and device.unit == "instructions"
