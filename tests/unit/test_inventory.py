from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from farm.config.inventory import (
    CORES,
    MAX_SHOWN,
    Core,
    Device,
    Fpu,
    InventoryError,
    PowerKind,
    UnknownDeviceError,
    load_inventory,
)

REPO = Path(__file__).resolve().parents[2]

# A valid inventory: one emulated board, one board on a bench host. Each malformed
# case below changes one line of it.
VALID = textwrap.dedent(
    """\
    hosts:
      bench-1:
        address: 10.0.0.21
        user: farm
    devices:
      - name: emu
        core: cortex-m4
        fpu: sp
        dsp: true
        clock_hz: 25000000
        flash_bytes: 4194304
        ram_bytes: 4194304
        board: qemu-mps2-an386
        emulator:
          kind: qemu
          machine: mps2-an386
          icount_shift: 0
        power:
          kind: model
          voltage: 3.3
          ua_per_mhz: 100.0
      - name: real
        core: cortex-m3
        fpu: none
        dsp: false
        clock_hz: 72000000
        flash_bytes: 131072
        ram_bytes: 20480
        board: bluepill_f103c8
        serial:
          port: /dev/serial/by-id/usb-board-if00
          host: bench-1
        flash:
          protocol: stlink
    """
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    return path


def replace(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the base inventory"
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[occurrence - 1]


def load_error(tmp_path: Path, text: str) -> tuple[Path, InventoryError]:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return path, info.value


# --------------------------------------------------------------------------- valid files


def test_default_inventory_lists_the_three_emulated_boards() -> None:
    inventory = load_inventory(REPO / "devices.yaml")
    assert inventory.names == ["qemu-m4f", "qemu-m3", "qemu-rv32", "avr-mega2560", "avr-1284p"]
    assert inventory.hosts == {}
    m4f, m3 = inventory.device("qemu-m4f"), inventory.device("qemu-m3")

    assert (m4f.core, m4f.fpu, m4f.dsp) == (Core.CORTEX_M4, Fpu.SP, True)
    assert (m4f.clock_hz, m4f.flash_bytes, m4f.ram_bytes) == (25_000_000, 4 * 1024 * 1024, 4 * 1024 * 1024)
    assert m4f.board == "qemu-mps2-an386"
    assert m4f.emulator is not None and (m4f.emulator.kind, m4f.emulator.machine) == ("qemu", "mps2-an386")
    assert m4f.emulator.icount_shift == 6
    assert m4f.is_emulated and m4f.has_fpu and m4f.unit == "instructions"
    assert m4f.power is not None and m4f.power.kind is PowerKind.MODEL
    assert (m4f.power.voltage, m4f.power.ua_per_mhz) == (3.3, 100.0)

    assert (m3.core, m3.fpu, m3.dsp) == (Core.CORTEX_M3, Fpu.NONE, False)
    assert m3.board == "qemu-mps2-an385" and m3.clock_hz == 25_000_000
    assert m3.emulator is not None and m3.emulator.machine == "mps2-an385"
    assert not m3.has_fpu and m3.unit == "instructions"
    assert m3.power is not None and m3.power.voltage == 3.3 and m3.power.ua_per_mhz == 200.0

    rv32 = inventory.device("qemu-rv32")
    assert (rv32.core, rv32.fpu, rv32.dsp) == (Core.RV32IMAC, Fpu.NONE, False)
    assert rv32.core_info.family == "riscv" and rv32.core_info.isa == "rv32imac"
    assert rv32.board == "qemu-sifive-e" and rv32.clock_hz == 320_000_000
    assert (rv32.flash_bytes, rv32.ram_bytes) == (12 * 1024 * 1024, 16 * 1024)
    assert rv32.emulator is not None and (rv32.emulator.machine, rv32.emulator.icount_shift) == ("sifive_e", 0)
    assert not rv32.has_fpu and rv32.unit == "instructions" and "riscv" in rv32.tags
    assert rv32.power is not None and rv32.power.kind is PowerKind.MODEL
    assert (rv32.power.voltage, rv32.power.ua_per_mhz) == (1.8, 110.0)
    assert inventory.source == REPO / "devices.yaml"


def test_bench_example_parses_with_local_and_remote_boards() -> None:
    inventory = load_inventory(REPO / "examples" / "devices-bench.yaml")
    assert inventory.names == ["nucleo-f446re", "pico-m0plus", "esp32c3-devkit"]
    bench = inventory.hosts["bench-1"]
    assert (bench.address, bench.port, bench.user, bench.trust_on_first_use) == ("10.0.0.21", 22, "farm", False)
    assert bench.key_path == Path("~/.ssh/farm_ed25519").expanduser()

    nucleo = inventory.device("nucleo-f446re")
    assert nucleo.unit == "cycles" and not nucleo.is_emulated and nucleo.has_fpu
    assert not nucleo.is_remote and inventory.host_of(nucleo) is None
    assert nucleo.serial is not None and nucleo.serial.port.startswith("/dev/serial/by-id/")
    assert nucleo.serial.baud == 115200
    assert nucleo.flash is not None and nucleo.flash.probe_serial == "066DFF535155878281151932"
    assert nucleo.power is not None and nucleo.power.kind is PowerKind.PPK2 and nucleo.power.port

    pico = inventory.device("pico-m0plus")
    assert pico.core is Core.CORTEX_M0PLUS and not pico.has_fpu and pico.core_info.arch == "armv6m"
    assert pico.is_remote and pico.host == "bench-1" and inventory.host_of(pico) is bench

    esp = inventory.device("esp32c3-devkit")
    assert esp.core_info.arch == "rv32" and esp.core_info.isa == "rv32imc" and esp.core_info.family == "riscv"
    assert esp.power is None and esp.host == "bench-1"


def test_base_inventory_of_these_tests_is_valid(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, VALID))
    assert inventory.device("real").host == "bench-1"
    assert inventory.hosts["bench-1"].port == 22  # default


def test_unknown_device_lists_the_known_ones() -> None:
    inventory = load_inventory(REPO / "devices.yaml")
    with pytest.raises(KeyError) as info:
        inventory.device("nucleo")
    assert isinstance(info.value, UnknownDeviceError)
    assert str(info.value) == (f"no device 'nucleo' in {REPO / 'devices.yaml'}; known devices: qemu-m4f, qemu-m3, "
                               "qemu-rv32, avr-mega2560, avr-1284p")


def test_core_table_knows_isa_and_optional_units() -> None:
    assert CORES[Core.CORTEX_M3].arch == "armv7m" and CORES[Core.CORTEX_M3].fpu_options == (Fpu.NONE,)
    assert CORES[Core.CORTEX_M4].arch == "armv7em" and Fpu.SP in CORES[Core.CORTEX_M4].fpu_options
    assert Fpu.DP not in CORES[Core.CORTEX_M4].fpu_options
    assert Fpu.DP in CORES[Core.CORTEX_M7].fpu_options
    assert CORES[Core.CORTEX_M33].arch == "armv8m.main" and CORES[Core.CORTEX_M33].dsp_possible
    assert not CORES[Core.CORTEX_M0PLUS].dsp_possible
    assert CORES[Core.RV32IMAC].arch == "rv32"


# --------------------------------------------------------------------------- malformed files


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = replace("board: bluepill_f103c8", "board: bluepill: f103c8")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "bluepill: f103c8")
    column = text.splitlines()[line - 1].index(": f103c8") + 1  # the second ':' on the line
    assert [(i.line, i.column) for i in err.issues] == [(line, column)]
    assert f"{path}:{line}:{column}: YAML syntax error: mapping values are not allowed here" in str(err)


def test_unknown_key_names_the_key_and_suggests(tmp_path: Path) -> None:
    text = replace("icount_shift: 0", "icount: 0")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "icount: 0")
    assert str(err).splitlines()[1] == (
        f"  {path}:{line}: devices[0].emulator.icount: unknown key 'icount' (did you mean 'icount_shift'?); "
        "expected one of: kind, machine, icount_shift (device emu)"
    )


def test_wrong_type_names_field_and_expectation(tmp_path: Path) -> None:
    text = replace("clock_hz: 72000000", "clock_hz: fast")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "clock_hz: fast")
    assert len(err.issues) == 1
    issue = err.issues[0]
    assert (issue.line, issue.field) == (line, "devices[1].clock_hz")
    assert f"{path}:{line}: devices[1].clock_hz: expected a valid integer; got 'fast' (str) (device real)" in str(err)


def test_number_where_string_expected_says_to_quote(tmp_path: Path) -> None:
    text = replace("protocol: stlink", "protocol: stlink\n      probe_serial: 12345")
    _, err = load_error(tmp_path, text)
    assert err.issues[0].line == line_of(text, "probe_serial")
    assert err.issues[0].field == "devices[1].flash.probe_serial"
    assert "expected a valid string; got 12345 (int)" in err.issues[0].message
    assert "quote the value" in err.issues[0].message


def test_bad_enum_value_lists_the_allowed_ones(tmp_path: Path) -> None:
    text = replace("fpu: sp", "fpu: single")
    _, err = load_error(tmp_path, text)
    issue = err.issues[0]
    assert (issue.line, issue.field) == (line_of(text, "fpu: single"), "devices[0].fpu")
    assert issue.message.startswith("expected 'none', 'sp' or 'dp'; got 'single' (str)")


def test_misspelled_core_is_suggested(tmp_path: Path) -> None:
    text = replace("core: cortex-m4", "core: cortex-m4f")
    _, err = load_error(tmp_path, text)
    assert err.issues[0].line == line_of(text, "core: cortex-m4f")
    assert "did you mean 'cortex-m4'?" in err.issues[0].message


def test_missing_field_points_at_the_entry(tmp_path: Path) -> None:
    text = replace("    ram_bytes: 20480\n", "")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "- name: real")
    assert f"{path}:{line}: devices[1].ram_bytes: required field 'ram_bytes' is missing; expected an integer" in str(
        err
    )


def test_undefined_host(tmp_path: Path) -> None:
    text = replace("host: bench-1", "host: bench-9")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "host: bench-9")
    assert str(err).splitlines()[1] == (
        f"  {path}:{line}: devices[1].serial.host: host 'bench-9' is not declared under 'hosts' "
        "(declared: bench-1) (device real)"
    )


def test_duplicate_device_name_points_at_the_second(tmp_path: Path) -> None:
    text = replace("- name: real", "- name: emu")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "- name: emu", occurrence=2)
    assert line == 22
    assert f"{path}:{line}: devices[1].name: duplicate device name 'emu' (first used by devices[0])" in str(err)


def test_fpu_on_cortex_m3(tmp_path: Path) -> None:
    text = replace("fpu: none", "fpu: sp")
    path, err = load_error(tmp_path, text)
    line = line_of(text, "fpu: sp", occurrence=2)
    assert [i.line for i in err.issues] == [line]
    assert f"{path}:{line}: devices[1].fpu: cortex-m3 (armv7m) has no FPU; expected fpu: none (device real)" in str(err)


def test_dsp_on_cortex_m3_and_dp_on_cortex_m4(tmp_path: Path) -> None:
    text = replace("dsp: false", "dsp: true", replace("fpu: sp", "fpu: dp"))
    _, err = load_error(tmp_path, text)
    assert [(i.line, i.field) for i in err.issues] == [
        (line_of(text, "fpu: dp"), "devices[0].fpu"),
        (line_of(text, "dsp: true", occurrence=2), "devices[1].dsp"),
    ]
    assert err.issues[0].message.startswith("cortex-m4 (armv7em) can have fpu: none or sp, not dp")
    assert err.issues[1].message.startswith("cortex-m3 (armv7m) has no DSP/SIMD extension")


def test_emulator_and_serial_are_exclusive(tmp_path: Path) -> None:
    text = replace("    power:\n", "    serial:\n      port: /dev/ttyACM0\n    power:\n")
    _, err = load_error(tmp_path, text)
    issue = err.issues[0]
    assert (issue.line, issue.field) == (line_of(text, "serial:"), "devices[0].serial")
    assert "needs exactly one of 'emulator' or 'serial'; it has both" in issue.message


def test_device_without_emulator_or_serial(tmp_path: Path) -> None:
    text = replace("    serial:\n      port: /dev/serial/by-id/usb-board-if00\n      host: bench-1\n", "")
    _, err = load_error(tmp_path, text)
    assert (err.issues[0].line, err.issues[0].field) == (line_of(text, "- name: real"), "devices[1]")
    assert "it has neither" in err.issues[0].message


def test_power_model_needs_ua_per_mhz(tmp_path: Path) -> None:
    text = replace("      ua_per_mhz: 100.0\n", "")
    _, err = load_error(tmp_path, text)
    assert (err.issues[0].line, err.issues[0].field) == (line_of(text, "power:"), "devices[0].power")
    assert err.issues[0].message.startswith("kind: model needs ua_per_mhz")


def test_emulated_machine_must_match_core(tmp_path: Path) -> None:
    text = replace("machine: mps2-an386", "machine: mps2-an385")
    _, err = load_error(tmp_path, text)
    assert (err.issues[0].line, err.issues[0].field) == (line_of(text, "mps2-an385"), "devices[0].emulator.machine")
    assert "qemu mps2-an385 emulates a cortex-m3, but core is cortex-m4" in err.issues[0].message


def test_duplicate_yaml_key_is_not_silently_dropped(tmp_path: Path) -> None:
    text = replace("dsp: true", "dsp: true\n    dsp: false")
    _, err = load_error(tmp_path, text)
    assert (err.issues[0].line, err.issues[0].field) == (line_of(text, "dsp: false"), "devices[0].dsp")
    assert err.issues[0].message == f"duplicate key 'dsp' (first at line {line_of(text, 'dsp: true')})"


def test_secrets_are_refused(tmp_path: Path) -> None:
    text = replace("user: farm", "user: farm\n    password: hunter2")
    _, err = load_error(tmp_path, text)
    assert (err.issues[0].line, err.issues[0].field) == (line_of(text, "password"), "hosts.bench-1.password")
    assert "no secrets in the inventory" in err.issues[0].message


def test_several_errors_one_per_line_in_file_order(tmp_path: Path) -> None:
    text = replace("clock_hz: 25000000", "clock_hz: -1", replace("board: bluepill_f103c8", "board: 103"))
    path, err = load_error(tmp_path, text)
    lines = str(err).splitlines()
    assert lines[0] == f"{path}: invalid inventory, 2 problems:"
    assert lines[1] == (
        f"  {path}:{line_of(text, 'clock_hz: -1')}: devices[0].clock_hz: expected a number greater than 0; "
        "got -1 (int) (device emu)"
    )
    assert lines[2].startswith(f"  {path}:{line_of(text, 'board: 103')}: devices[1].board: expected a valid string")
    assert len(lines) == 3


def test_a_long_list_of_errors_fits_on_one_screen(tmp_path: Path) -> None:
    entries = "".join(f"  - name: d{i}\n    core: z80\n" for i in range(30))
    _, err = load_error(tmp_path, f"devices:\n{entries}")
    lines = str(err).splitlines()
    assert len(err.issues) > MAX_SHOWN
    assert len(lines) == MAX_SHOWN + 2
    assert lines[-1] == f"  ... and {len(err.issues) - MAX_SHOWN} more"


def test_empty_file(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "# nothing yet\n")
    assert str(err).splitlines()[1] == f"  {path}:1: the file is empty; expected 'devices:' with at least one device"


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_inventory(tmp_path / "nope.yaml")


def test_devices_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="cortex-m3 \\(armv7m\\) has no FPU"):
        Device(
            name="x", core="cortex-m3", fpu="sp", dsp=False, clock_hz=1, flash_bytes=1, ram_bytes=1, board="b",
            emulator={"kind": "qemu", "machine": "mps2-an385"},
        )  # fmt: skip


def test_unknown_emulator_machine_lists_the_known_ones(tmp_path: Path) -> None:
    text = replace("machine: mps2-an386", "machine: lm3s6965evb")
    _, err = load_error(tmp_path, text)
    assert (err.issues[0].line, err.issues[0].field) == (line_of(text, "lm3s6965evb"), "devices[0].emulator.machine")
    assert err.issues[0].message.startswith(
        "unknown qemu machine 'lm3s6965evb'; expected one of mps2-an385, mps2-an386, sifive_e"
    )
