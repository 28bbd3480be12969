from __future__ import annotations

import pytest

from farm.config.machine_flags import UnsupportedCoreError, machine_flags


def test_fpu_core_with_fpu_is_hard_float():
    m = machine_flags("cortex-m4", "sp", True)
    assert m.float_abi == "hard"
    assert m.flags == ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


def test_core_without_fpu_is_soft_float():
    assert machine_flags("cortex-m3", "none", False).flags == ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft")
    m4_nofpu = machine_flags("cortex-m4", "none", True)
    assert m4_nofpu.float_abi == "soft" and m4_nofpu.flags[0] == "-mcpu=cortex-m4+nofp"


def test_dsp_absent_is_switched_off_where_optional():
    assert machine_flags("cortex-m33", "none", False).flags[0] == "-mcpu=cortex-m33+nofp+nodsp"
    assert machine_flags("cortex-m7", "dp", True).flags[-1] == "-mfpu=fpv5-d16"


def test_riscv():
    m = machine_flags("rv32imac", "none", False)
    assert m.arch == "riscv" and m.flags == ("-march=rv32imac", "-mabi=ilp32", "-misa-spec=2.2")


def test_impossible_combinations_refused():
    with pytest.raises(UnsupportedCoreError):
        machine_flags("cortex-m3", "sp", False)
    with pytest.raises(UnsupportedCoreError):
        machine_flags("z80", "none", False)
