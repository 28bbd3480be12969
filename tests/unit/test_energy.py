from __future__ import annotations

from pathlib import Path

import pytest

from farm.power import monitor as registry
from farm.power.energy import (
    DatasheetModel,
    EnergyError,
    EnergyFigure,
    PowerMonitor,
    PowerMonitorNotImplementedError,
    energy_per_inference,
    power_monitor_class,
    power_monitor_for,
    register_power_monitor,
)
from farm.config.inventory import Device, PowerKind, load_inventory

REPO = Path(__file__).resolve().parents[2]


def emulated(
    name: str = "emu",
    ua_per_mhz: float = 120.0,
    voltage: float = 3.3,
    clock_hz: int = 25_000_000,
    power: dict[str, object] | None = None,
) -> Device:
    return Device.model_validate(
        {
            "name": name, "core": "cortex-m4", "fpu": "sp", "dsp": True, "clock_hz": clock_hz,
            "flash_bytes": 4 << 20, "ram_bytes": 4 << 20, "board": "qemu-mps2-an386",
            "emulator": {"kind": "qemu", "machine": "mps2-an386"},
            "power": power or {"kind": "model", "voltage": voltage, "ua_per_mhz": ua_per_mhz},
        }
    )  # fmt: skip


def test_model_energy_is_count_times_volts_times_current_per_mhz() -> None:
    figure = energy_per_inference(emulated(), 1_000_000, "instructions")
    # 1e6 x 3.3 V x 120 uA/MHz x 1e-12 J = 3.96e-4 J = 396 uJ
    assert figure == EnergyFigure(
        energy_uj=pytest.approx(396.0),
        source="modelled: 120 uA/MHz x 3.3 V x instructions (datasheet model, not measured)",
    )


def test_model_agrees_with_power_times_time_at_any_clock() -> None:
    count, volts, ua_per_mhz = 2_500_000, 1.8, 75.0
    for clock_hz in (8_000_000, 25_000_000, 480_000_000):
        seconds = count / clock_hz
        amps = ua_per_mhz * 1e-6 * clock_hz / 1e6
        expected_uj = volts * amps * seconds * 1e6
        figure = energy_per_inference(
            emulated(ua_per_mhz=ua_per_mhz, voltage=volts, clock_hz=clock_hz), count, "cycles"
        )
        assert figure is not None
        assert figure.energy_uj == pytest.approx(expected_uj)
        assert figure.energy_uj == pytest.approx(337.5)


def test_default_inventory_boards_are_modelled_with_their_datasheet_figures() -> None:
    inventory = load_inventory(REPO / "devices.yaml")
    m4f = energy_per_inference(inventory.device("qemu-m4f"), 10_000, "instructions")
    m3 = energy_per_inference(inventory.device("qemu-m3"), 10_000, "instructions")
    assert m4f is not None and m3 is not None
    assert m4f.energy_uj == pytest.approx(10_000 * 3.3 * 100.0 * 1e-6)  # 3.3 uJ
    assert m3.energy_uj == pytest.approx(10_000 * 3.3 * 200.0 * 1e-6)  # 6.6 uJ
    assert m3.source == "modelled: 200 uA/MHz x 3.3 V x instructions (datasheet model, not measured)"


def test_cycles_are_labelled_as_cycles_and_zero_costs_nothing() -> None:
    figure = energy_per_inference(emulated(), 0, "cycles")
    assert figure is not None and figure.energy_uj == 0.0
    assert " x cycles " in figure.source


@pytest.mark.parametrize(("count", "unit", "match"), [
    (-1, "cycles", "non-negative"),
    (float("nan"), "cycles", "finite"),
    (100, "ticks", "unknown count unit 'ticks'"),
])  # fmt: skip
def test_bad_counts_are_refused(count: float, unit: str, match: str) -> None:
    with pytest.raises(EnergyError, match=match):
        energy_per_inference(emulated(), count, unit)


def test_measuring_monitors_need_the_board_running() -> None:
    bench = load_inventory(REPO / "examples" / "devices-bench.yaml")
    nucleo = bench.device("nucleo-f446re")
    assert nucleo.power is not None and nucleo.power.kind is PowerKind.PPK2
    assert power_monitor_class("ppk2").measures and power_monitor_class("joulescope").measures
    with pytest.raises(EnergyError, match="ppk2 measures the board while it runs"):
        energy_per_inference(nucleo, 1000, "cycles")  # a count alone is not enough: see tests/test_ppk2.py


def test_an_unimplemented_monitor_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {PowerKind.MODEL: DatasheetModel})
    nucleo = load_inventory(REPO / "examples" / "devices-bench.yaml").device("nucleo-f446re")
    with pytest.raises(PowerMonitorNotImplementedError) as info:
        energy_per_inference(nucleo, 1000, "cycles")
    assert str(info.value) == (
        "device nucleo-f446re: power monitor ppk2 is not implemented yet in this version of tinyfarm "
        "(implemented: model); no energy figure is produced for it"
    )
    with pytest.raises(PowerMonitorNotImplementedError, match="joulescope is not implemented yet"):
        power_monitor_class("joulescope")


def test_device_without_power_section_has_no_energy_figure() -> None:
    esp = load_inventory(REPO / "examples" / "devices-bench.yaml").device("esp32c3-devkit")
    assert esp.power is None
    assert power_monitor_for(esp) is None
    assert energy_per_inference(esp, 1000, "cycles") is None


def test_registry_is_looked_up_by_inventory_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert power_monitor_class("model") is DatasheetModel
    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry.registered_monitors().items()
                                              if k is not PowerKind.JOULESCOPE})

    @register_power_monitor("joulescope")
    class FakeJoulescope(PowerMonitor):
        def energy_per_inference(self, count: float, unit: str, device: Device) -> EnergyFigure:
            return EnergyFigure(energy_uj=count * 0.5, source="measured: joulescope " + str(self.spec.port))

    assert FakeJoulescope.kind is PowerKind.JOULESCOPE
    device = emulated(power={"kind": "joulescope", "voltage": 1.8, "port": "JS220-001234"})
    assert energy_per_inference(device, 10, "cycles") == EnergyFigure(5.0, "measured: joulescope JS220-001234")

    with pytest.raises(ValueError, match="already registered by FakeJoulescope"):
        register_power_monitor("joulescope")(FakeJoulescope)
    with pytest.raises(ValueError, match="'oscilloscope' is not a valid PowerKind"):
        register_power_monitor("oscilloscope")


def test_a_monitor_refuses_another_devices_power_section() -> None:
    monitor = power_monitor_for(emulated("a", ua_per_mhz=100.0))
    assert isinstance(monitor, DatasheetModel)
    with pytest.raises(EnergyError, match="device b"):
        monitor.energy_per_inference(1000, "cycles", emulated("b", ua_per_mhz=50.0))
