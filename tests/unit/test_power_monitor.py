"""The power package's shape (after labgrid): the interface and registry import no
driver, the drivers import only the interface and the capture math, and the lookup
imports every driver so each kind the inventory can declare is registered."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from farm.config.inventory import PowerKind
from farm.power.datasheet import check_count
from farm.power.energy import EnergyError, implemented_kinds
from farm.store.status import Unit

POWER = Path(__file__).resolve().parents[2] / "farm" / "power"
DRIVERS = ("farm.power.datasheet", "farm.power.ppk2", "farm.power.joulescope")


def _farm_imports(module: str) -> set[str]:
    tree = ast.parse((POWER / f"{module.rsplit('.', 1)[1]}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("farm."):
            found.add(node.module or "")
            found.update(f"{node.module}.{a.name}" for a in node.names if node.module == "farm.power")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("farm."))
    return {m for m in found if m.startswith("farm.power")}


def test_the_registry_imports_no_driver() -> None:
    assert _farm_imports("farm.power.monitor") == set()
    code = ("import sys, farm.power.monitor as m; "
            "print(sorted(n for n in sys.modules if n.startswith('farm.power.')), dict(m.registered_monitors()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['farm.power.monitor'] {}"


@pytest.mark.parametrize("driver", DRIVERS)
def test_drivers_import_only_the_interface_and_the_capture_math(driver: str) -> None:
    assert _farm_imports(driver) <= {"farm.power.monitor", "farm.power.capture"}


def test_the_lookup_registers_every_kind_the_inventory_can_declare() -> None:
    assert implemented_kinds() == sorted(str(k) for k in PowerKind)


def test_count_units_are_the_farms_units() -> None:
    for unit in Unit:
        check_count(10.0, unit)
        check_count(10.0, str(unit))
    with pytest.raises(EnergyError, match="unknown count unit 'ticks'; expected one of cycles, instructions"):
        check_count(10.0, "ticks")
