"""The code generator's layering (TFLM's shape): the lowered IR and the registry of lowerings
import no op and not the emitter; the ops register themselves when farm.codegen.lowering
imports them; the .tflite reader is a leaf that farm.models can import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CODEGEN = Path(__file__).resolve().parents[2] / "farm" / "codegen"


def _farm_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("farm"):
            found.update(f"{node.module}.{a.name}" if node.module == "farm.codegen" else node.module
                         for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("farm"))
    return found


@pytest.mark.parametrize("module, allowed", [
    ("ir.py", {"farm.codegen.errors", "farm.codegen.tflite_reader"}),
    ("registry.py", {"farm.codegen.ir", "farm.codegen.tflite_reader"}),
    ("emit.py", {"farm.codegen.errors", "farm.codegen.ir", "farm.codegen.planner"}),
    ("tflite_reader.py", set()),
    ("inplace.py", {"farm.codegen.ir"}),  # the in-place shifts: a helper of ops and plan, below both
])
def test_the_ir_registry_emitter_and_reader_import_only_what_is_below_them(module: str, allowed: set[str]):
    assert _farm_imports(CODEGEN / module) <= allowed


def test_no_op_imports_the_lowering_driver():
    allowed = {"farm.codegen.ir", "farm.codegen.registry", "farm.codegen.emit", "farm.codegen.tflite_reader",
               "farm.codegen.quantize_multiplier", "farm.codegen.fixed_point_math", "farm.codegen.packing",
               "farm.codegen.inplace"}
    for path in sorted((CODEGEN / "ops").glob("*.py")):
        if path.name == "__init__.py":
            continue
        imports = {m for m in _farm_imports(path) if not m.startswith("farm.codegen.ops")}
        assert imports <= allowed, f"{path.name}: {sorted(imports - allowed)}"


def _fresh(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_every_op_is_registered_once_lowering_is_imported():
    out = _fresh("from farm.codegen.lowering import supported_ops; print(len(supported_ops()))")
    assert int(out) == 18


def test_the_reader_imports_cleanly_on_its_own_and_from_the_models_stage():
    assert _fresh("import farm.codegen.tflite_reader as r; print(r.read_tflite.__name__)") == "read_tflite"
    assert _fresh("import farm.models.build, farm.codegen; print(len(farm.codegen.supported_ops()))") == "18"
