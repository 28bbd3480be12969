"""`farm init` in a fresh directory outside the checkout: a working project, as a new user gets it.

- `farm init` writes tinyfarm.yaml, devices.yaml, tests/hil/test_my_models.py and .gitignore,
  and says what to run next;
- `farm models` there lists the project's model (the zoo's sine, as the project declares it);
- a second `farm init` is idempotent (same content: nothing written, exit 0); once the user
  has edited a file it refuses to overwrite it (exit 2, nothing written) unless --force;
- `farm nightly` there, narrowed by -k to the project's own tests on ONE emulated board
  (qemu-m4f), runs them against its models and passes -- with a second test file the user
  added that measures a ready .tflite by its path (``measure("models/sine_int8.tflite")``,
  like ``farm run --model PATH.tflite``).

The subprocesses share the test session's state folder (FARM_HOME: models and firmware
cached by content hash) but write their results to the project's own database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]
FILES = ["tinyfarm.yaml", "devices.yaml", "tests/hil/test_my_models.py", ".gitignore"]


def farm(cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FARM_PROJECT", "FARM_DB_URL", "FARM_THRESHOLDS")}
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("new-user-project")
    assert REPO not in where.parents
    proc = farm(where, "init")
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        assert (where / name).is_file(), name
        assert str(where / name) in proc.stdout  # it says what it wrote
    assert "farm nightly" in proc.stdout and "farm models" in proc.stdout  # and what to run next
    return where


def test_init_writes_a_project_that_loads(project: Path):
    from farm.project.file import load_project

    loaded = load_project(project / "tinyfarm.yaml", ["qemu-m4f", "qemu-m3", "qemu-rv32"])
    assert list(loaded.models) == ["sine"] and loaded.tests == [project / "tests" / "hil"]
    assert loaded.budgets_of("sine") is not None and loaded.budgets_of("sine").latency_us
    assert ".farm/" in (project / ".gitignore").read_text().splitlines()
    text = (project / "tinyfarm.yaml").read_text()
    for key in ("keras:", "saved_model:", "tflite:", "recipe:", "representative:", "loader:", "metric:",
                "accuracy_drop_max:", "portable:", "devices:"):  # the template of the user's own model
        assert f"#   {key}" in text or f"# {key}" in text or f"#     {key}" in text or key in text, key


def test_farm_models_lists_the_projects_model(project: Path):
    proc = farm(project, "models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["model"] for r in rows} == {"sine"}
    assert [r["variant"] for r in rows] == ["float32", "int8-weights", "dynamic", "int8"]
    assert all(r["source"] == {"kind": "zoo", "path": "sine"} for r in rows)
    proc = farm(project, "models")
    assert proc.returncode == 0 and str(project / "tinyfarm.yaml") in " ".join(proc.stdout.split()), proc.stdout


def test_a_second_init_changes_nothing_and_never_overwrites_an_edit(project: Path):
    before = {name: (project / name).read_text() for name in FILES}
    proc = farm(project, "init")
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stdout + proc.stderr
    assert {name: (project / name).read_text() for name in FILES} == before
    edited = before["tinyfarm.yaml"] + "# my edit\n"
    (project / "tinyfarm.yaml").write_text(edited)
    proc = farm(project, "init")
    assert proc.returncode == 2 and "tinyfarm.yaml already there" in proc.stderr and "--force" in proc.stderr
    assert (project / "tinyfarm.yaml").read_text() == edited
    proc = farm(project, "init", "--force")
    assert proc.returncode == 0 and (project / "tinyfarm.yaml").read_text() == before["tinyfarm.yaml"]


USER_FILE_TEST = """\
import pytest


def test_wave_runs_on_the_cluster(device, measure):
    r = measure("wave", "float32")
    assert r.status == "ok", r.message
    assert r.metric == "mae" and r.accuracy_device == pytest.approx(r.accuracy_host, abs=1e-4)


def test_ready_tflite_by_path(device, measure):
    r = measure("models/sine_int8.tflite")
    assert r.status == "ok", r.message
    assert r.variant == "int8" and r.bit_exact_fraction == 1.0 and r.count_median > 0
    assert measure("models/sine_int8.tflite", "int8") is r
"""


@pytest.mark.requires_tool("arm-none-eabi-gcc", "qemu-system-arm")
def test_farm_nightly_runs_the_projects_tests_out_of_the_box(project: Path, state_dir: Path):
    import shutil

    from farm.models import build_variant

    (project / "models").mkdir(exist_ok=True)
    (project / "data").mkdir(exist_ok=True)
    shutil.copy(build_variant("sine", "int8", state_dir / "models").tflite_path, project / "models" / "sine_int8.tflite")
    # a model only this project has: measured on the local cluster's worker, which must know it
    shutil.copy(build_variant("sine", "float32", state_dir / "models").tflite_path, project / "models" / "wave.tflite")
    x = np.linspace(0.0, 6.0, 16, dtype=np.float32).reshape(16, 1)
    np.savez(project / "data" / "wave.npz", x=x, y=np.sin(x))
    with (project / "tinyfarm.yaml").open("a") as f:
        f.write("  wave:\n    source: {tflite: {float32: models/wave.tflite}}\n"
                "    data: {test: data/wave.npz}\n    metric: mae\n")
    (project / "tests" / "hil" / "test_my_file.py").write_text(USER_FILE_TEST)
    junit = project / "junit.xml"
    db = project / ".farm" / "results.db"
    db.parent.mkdir(exist_ok=True)
    proc = farm(project, "nightly", "--db", f"sqlite:///{db}", "-k", "(test_my_models or test_my_file) and qemu-m4f",
                "--junit", str(junit), "--no-progress", "--scheduler", "local")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    names = {c.get("name"): c for c in cases if "test_my_" in (c.get("classname") or "")}
    assert set(names) == {"test_sine_int8_bit_exact_on_the_board[qemu-m4f]",
                          "test_sine_device_matches_host[qemu-m4f-float32]",
                          "test_sine_device_matches_host[qemu-m4f-int8]",
                          "test_ready_tflite_by_path[qemu-m4f]", "test_wave_runs_on_the_cluster[qemu-m4f]"}, names
    assert all(c.find("failure") is None and c.find("error") is None and c.find("skipped") is None
               for c in names.values())
    store = ResultsStore(f"sqlite:///{db}")
    run = store.latest_run("nightly")
    records = store.results_for_run(run.id)
    assert run.status == "passed"
    assert {(r.device, r.model, r.variant, r.status) for r in records} == {
        ("qemu-m4f", "sine", "float32", "ok"), ("qemu-m4f", "sine", "int8", "ok"),
        ("qemu-m4f", "sine_int8.tflite", "int8", "ok"), ("qemu-m4f", "wave", "float32", "ok")}
    wave = next(r for r in records if r.model == "wave")
    assert wave.details.get("worker", "in-process") != "in-process", wave.details  # measured by a Dask worker
    assert all(r.count_median > 0 and r.energy_uj > 0 for r in records)
    by_path = next(r for r in records if r.model == "sine_int8.tflite")  # stored with its provenance
    assert by_path.details["model_file"] == str(project / "models" / "sine_int8.tflite")
    assert by_path.details["model_reference"] == "tflite-micro" and by_path.model_sha256
