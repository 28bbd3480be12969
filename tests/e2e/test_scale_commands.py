"""``farm portability`` and ``farm profile`` as board jobs on a Dask cluster (farm.scale.board_runs):
the same cells and the same profile as in one process, each board job on the worker that
advertises its board."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=900)


def _cells(scheduler: str) -> tuple[dict[tuple[str, str, str], dict], str]:
    proc = farm("portability", "--model", "sine", "--variant", "int8", "--variant", "float32", "--device", "qemu-m3",
                "--device", "qemu-rv32", "--json", "--scheduler", scheduler)
    assert proc.returncode == 0, (proc.stderr[-3000:], proc.stdout[-3000:])
    return {(c["model"], c["variant"], c["device"]): c for c in json.loads(proc.stdout)}, proc.stderr


def test_portability_on_a_local_cluster_gives_the_cells_of_one_process(state_dir: Path):
    here, _ = _cells("in-process")
    there, log = _cells("local")
    assert sorted(there) == sorted(here) and len(there) == 4
    for key, cell in there.items():
        for field in ("status", "checked", "float_kind", "float_abi", "softfloat_call_sites",
                      "softfloat_calls_per_inference", "softfloat_calls_by_helper", "flash_bytes", "ram_bytes"):
            assert cell[field] == here[key][field], (key, field, cell[field], here[key][field])
        assert cell["status"] == "runs", cell["reason"]
    assert there["sine", "float32", "qemu-m3"]["softfloat_calls_per_inference"] > 0  # measured on the worker


def test_profile_on_a_local_cluster_equals_the_profile_in_process(state_dir: Path):
    args = ("profile", "--device", "qemu-m3", "--model", "sine", "--variant", "int8", "--json")
    here = farm(*args, "--scheduler", "in-process")
    there = farm(*args, "--scheduler", "local")
    assert here.returncode == 0 and there.returncode == 0, (here.stderr[-2000:], there.stderr[-2000:])
    a, b = json.loads(here.stdout), json.loads(there.stdout)
    assert a["total"] == b["total"] > 0  # emulated counts are exact, wherever they are measured
    assert a["functions"] == b["functions"]


def test_static_checks_on_a_local_cluster_are_made_on_workers_as_in_process(state_dir: Path, tmp_path: Path):
    """The HIL suite's static portability checks come from the host-only prepare job of each
    (device, model, variant), one per run, shared by the measurement and the matrix cell: made
    on a worker of a real local cluster, the same report as in this process."""
    from farm.board.leases import LeasePolicy
    from farm.config.inventory import load_inventory
    from farm.measure.static_check import static_check
    from farm.scale.cluster import cluster_session
    from farm.scale.dispatch import Dispatcher
    from farm.scale.jobs import MeasureSpec, portability_job

    inventory = load_inventory(REPO / "devices.yaml")
    device = {d.name: d for d in inventory.devices}["qemu-m3"]
    here = static_check(device, "sine", "float32", state_dir)
    policy = LeasePolicy(f"sqlite:///{tmp_path / 'leases.db'}", wait=0.0, purpose="test")
    with cluster_session("local", ["qemu-m3"]) as session:
        prepared: dict = {}
        measurements = Dispatcher(session.client, prepared=prepared)
        cells = Dispatcher(session.client, prepared=prepared, job=portability_job)
        spec = MeasureSpec(device, "sine", "float32", policy)
        measurements.submit(spec)
        cells.submit(spec)
        assert len(prepared) == 1  # one prepare job for the measurement, the cell and the static check
        there = measurements.static(spec)
        assert cells.static(spec) is there or cells.static(spec) == there
        cell = cells.outcome(spec).record
        measurements.close()
        cells.close()
    assert there is not None and there.made_on.startswith("tcp://127.0.0.1:"), there
    assert here.made_on == "in-process" and here.does_not_fit is None and there.does_not_fit is None
    assert there.report.summary() == here.report.summary()
    assert there.report.float_kind == "soft-float" and there.report.softfloat_call_sites > 0
    assert cell.status == "runs", cell.reason
