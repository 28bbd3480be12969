"""The harness's Arduino board layer, as far as it can be checked without an Arduino core.

The layer (firmware/lib/harness_arduino) cannot be built here -- the cores come
from PlatformIO's registry -- so these tests compile it with the Debian Arm
toolchain against a stub Arduino.h that only declares the API it uses: it must
compile warning-free and define every board.h function with C linkage, on a core
with DWT (Cortex-M4) and one without (Cortex-M0+). The harness itself must leave
main() and the start-up code to the Arduino core. Whether it *runs* on a board
is not verified (README).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from farm.build.firmware import BuildTarget, _platformio_ini
from farm.config.machine_flags import machine_flags

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "farm" / "firmware" / "lib" / "harness"
LAYER = REPO / "farm" / "firmware" / "lib" / "harness_arduino" / "src" / "board_arduino.cpp"
STUB = Path(__file__).parents[1] / "fixtures" / "arduino_stub"
BOARD_API = {"board_init", "board_uart_write", "board_uart_read_byte", "board_timer_read", "board_timer_hz",
             "board_timer_source", "board_name", "board_marker"}

pytestmark = pytest.mark.requires_tool("arm-none-eabi-g++", "arm-none-eabi-gcc", "arm-none-eabi-nm")


def _compile(source: Path, out: Path, cpu: str, *extra: str) -> set[str]:
    compiler = "arm-none-eabi-g++" if source.suffix == ".cpp" else "arm-none-eabi-gcc"
    subprocess.run([compiler, f"-mcpu={cpu}", "-mthumb", "-O2", "-Wall", "-Wextra", "-Werror", "-DARDUINO=10819",
                    f"-I{STUB}", f"-I{HARNESS / 'include'}", *extra, "-c", str(source), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    nm = subprocess.run(["arm-none-eabi-nm", "--defined-only", str(out)], check=True, capture_output=True,
                        text=True).stdout
    return {line.split()[-1] for line in nm.splitlines() if line.split()[1] in "TtWw"}


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m0plus"])
def test_board_layer_compiles_and_defines_board_h(cpu: str, tmp_path: Path):
    symbols = _compile(LAYER, tmp_path / "board_arduino.o", cpu, "-std=gnu++17", "-DHARNESS_MARKER_PIN=5")
    assert BOARD_API <= symbols  # C linkage: the names main.c calls
    assert {"_Z5setupv", "_Z4loopv"} <= symbols  # setup() and loop() for the Arduino core


def test_harness_leaves_main_and_startup_to_the_arduino_core(tmp_path: Path):
    calib = Path(__file__).parents[1] / "fixtures" / "calib_model"
    main = _compile(HARNESS / "src" / "main.c", tmp_path / "main.o", "cortex-m4", "-std=c11", f"-I{calib}")
    assert "harness_main" in main and "main" not in main
    assert "board_marker" in main  # the weak no-op, overridden by the layer's
    startup = _compile(HARNESS / "src" / "startup_cortexm.c", tmp_path / "startup.o", "cortex-m4", "-std=c11")
    assert "Reset_Handler" not in startup


def test_a_real_board_builds_with_its_platform_and_the_arduino_layer(tmp_path: Path):
    target = BuildTarget("nucleo_f446re", machine_flags("cortex-m4", "sp", True), platform="ststm32")
    ini = _platformio_ini(target, "0" * 64, tmp_path)
    assert "platform = ststm32" in ini and "board = nucleo_f446re" in ini and "framework = arduino" in ini
    assert "lib_deps = harness, harness_arduino, kernels" in ini
    emulated = _platformio_ini(BuildTarget("qemu-mps2-an386", machine_flags("cortex-m4", "sp", True)), "0" * 64,
                               tmp_path)
    assert "harness_arduino" not in emulated and "framework" not in emulated
