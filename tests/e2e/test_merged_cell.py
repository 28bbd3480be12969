"""A session that measures a (device, model, variant) and asks its portability cell gets both from
one job: the measurement's first test sample stands for the cell's one inference.

On the QEMU boards (real firmware, real emulator): the cell made from the measurement's job is
the cell a job of its own makes (status, float kind, the soft-float calls counted from QEMU's
trace, sizes); and a HIL session, in process and on a local Dask cluster, flashes and loads the
board once per (device, model, variant) for both, stores the measurement once, and still makes
a cell on its own for what it does not measure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from farm.config.inventory import load_inventory
from farm.measure.portability_matrix import measure_and_cell, portability_cell
from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]
DEVICES = REPO / "devices.yaml"
SAME = ("status", "checked", "float_kind", "float_abi", "softfloat_call_sites", "softfloat_helpers",
        "softfloat_calls_per_inference", "softfloat_calls_by_helper", "macs", "flash_bytes", "ram_bytes",
        "device_flash_bytes", "device_ram_bytes", "compiler_flags", "elf", "violations", "reason")


@pytest.mark.parametrize(("board", "variant"), [("qemu-m3", "float32"), ("qemu-m3", "int8"),
                                                ("qemu-m4f", "dynamic")])
def test_the_cell_from_the_measurement_is_the_cells_own(board, variant, state_dir):
    device = load_inventory(DEVICES).device(board)
    record, cell = measure_and_cell(device, "sine", variant, state_dir)
    own = portability_cell(device, "sine", variant, state_dir)
    assert record.status == "ok", record.message
    assert cell is not None and cell.shared_job and not own.shared_job
    assert cell.status == "runs", cell.reason
    for name in SAME:
        assert getattr(cell, name) == getattr(own, name), name
    if board == "qemu-m3" and variant == "float32":  # counted from QEMU's trace, in both
        assert cell.softfloat_calls_per_inference and cell.softfloat_calls_per_inference > 0


def test_a_model_that_does_not_fit_gives_the_cell_its_verdict_without_the_board(state_dir):
    device = load_inventory(DEVICES).device("qemu-rv32")  # 16 KiB of RAM: kws float32 does not fit
    record, cell = measure_and_cell(device, "kws", "float32", state_dir)
    own = portability_cell(device, "kws", "float32", state_dir)
    assert record.status == "does-not-fit", record.message
    assert cell is not None and cell.status == own.status == "does-not-fit"
    assert cell.reason == own.reason and cell.checked == own.checked == "static"


HIL = '''
import json, os
from pathlib import Path

import pytest

OUT = Path(os.environ["MERGED_OUT"])


def _note(name, **fields):
    with OUT.open("a") as f:
        f.write(json.dumps({"test": name, **fields}) + "\\n")


@pytest.mark.parametrize("variant", ["int8", "float32"])
def test_cell_first(device, portability, variant):
    cell = portability("sine", variant)
    _note("cell", device=device.name, variant=variant, status=str(cell.status), shared=cell.shared_job)
    assert cell.status == "runs", cell.reason


@pytest.mark.parametrize("variant", ["int8", "float32"])
def test_measure_after(device, measure, variant):
    record = measure("sine", variant)
    assert record.status == "ok", record.message


def test_cell_not_measured(device, portability):
    cell = portability("sine", "dynamic")
    _note("cell", device=device.name, variant="dynamic", status=str(cell.status), shared=cell.shared_job)
    assert cell.status == "runs", cell.reason
'''


@pytest.mark.parametrize("scheduler", ["in-process", "local"])
def test_a_session_flashes_once_for_the_measurement_and_the_cell(scheduler, tmp_path, state_dir):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_merged.py").write_text(textwrap.dedent(HIL))
    out = tmp_path / "cells.jsonl"
    url = f"sqlite:///{tmp_path / 'results.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("FARM_DB_URL", "FARM_SCHEDULER")}
    env.update(FARM_HOME=str(state_dir), MERGED_OUT=str(out))
    run = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", "-q", "-rA",
                          "--rootdir", str(suite), f"--farm-devices={DEVICES}", f"--farm-db={url}",
                          f"--farm-scheduler={scheduler}", "-k", "qemu-m3"],
                         cwd=tmp_path, env=env, text=True, capture_output=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "5 passed" in output, output[-4000:]
    cells = {c["variant"]: c for c in map(json.loads, out.read_text().splitlines())}
    assert cells["int8"]["shared"] and cells["float32"]["shared"], cells  # from the measurement's job
    assert not cells["dynamic"]["shared"], cells  # not measured: a job of its own
    store = ResultsStore(url)
    runs = store.runs()
    records = [r for run_ in runs for r in store.results_for_run(run_.id)]
    # the measurement stored once each, though the cell's test asked for it first
    assert sorted((r.device, r.variant) for r in records) == [("qemu-m3", "float32"), ("qemu-m3", "int8")]
    if scheduler == "local":  # the cluster's job log: two measure jobs and one cell job, nothing else on the board
        spans = [s for run_ in runs for s in (run_.details or {}).get("cluster_jobs", []) if s["kind"] == "board"]
        kinds = sorted(s["key"].split("-")[0] for s in spans)
        assert kinds == ["measure", "measure", "portability"], spans
