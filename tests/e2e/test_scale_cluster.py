"""Boards on Dask workers (farm/scale), for real: a scheduler, two `farm worker` processes on
loopback each serving a different emulated board (QEMU), the HIL suite's jobs sent there.

(a) every job lands on the worker that serves its board (the worker recorded per result),
no board ever runs two jobs at once (the lease log, and the workers' own job log),
and the results are stored by the controller;
(b) a worker killed (SIGKILL) mid-job: that board's job is infra-error naming the worker,
the board is not used again, the other board's results are kept and the run goes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from farm.board.leases import LeaseManager
from farm.pytest_plugin.suite import HIL_SUITE
from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]
DEVICES = REPO / "devices.yaml"
BOARDS = {"qemu-m4f", "qemu-m3"}
# the boards the test's two workers serve (the inventory's others have no worker here)
KEYWORD = "test_sine and (test_int8_bit_exact or test_energy_follows_count) and not qemu-rv32 and not avr"


@pytest.fixture
def scheduler():
    """A scheduler on loopback (in this process: a LocalCluster with no workers of its own)."""
    from distributed import LocalCluster

    from farm.scale.cluster import quiet_logs

    quiet_logs()
    cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, scheduler_kwargs={"port": 0})
    yield cluster.scheduler_address
    cluster.close()


def _worker(address: str, board: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "farm", "--devices", str(DEVICES), "worker", "--scheduler",
                             address, "--boards", board, "--listen", "127.0.0.1"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_joined(process: subprocess.Popen[str], lines: list[str]) -> str:
    """The worker's address, from its 'worker ADDRESS ... serving' line."""
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("worker ") and "serving" in line:
            threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()  # type: ignore[arg-type]
            return line.split()[1]
    raise AssertionError("worker did not join: " + "".join(lines))


def _pytest(address: str, url: str, *extra: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest", str(HIL_SUITE), "-p", "no:cacheprovider",
                             "-q", "-rA", "--rootdir", str(HIL_SUITE), "--confcutdir",
                             str(HIL_SUITE), f"--farm-devices={DEVICES}", f"--farm-db={url}",
                             f"--farm-scheduler={address}", "-k", KEYWORD, *extra], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FARM_DB_URL", "FARM_SCHEDULER")}
    env["FARM_HOME"] = str(state_dir)
    return env


def _no_overlap(intervals: list[tuple[float, float]], what: str) -> None:
    intervals = sorted(intervals)
    for (_, end), (start, _) in zip(intervals, intervals[1:]):
        assert end <= start, f"{what} ran two jobs at once: {intervals}"


def test_jobs_land_on_their_boards_workers_one_at_a_time(scheduler, tmp_path, state_dir):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    env = _env(state_dir)
    logs: dict[str, list[str]] = {"qemu-m4f": [], "qemu-m3": []}
    workers = {board: _worker(scheduler, board, env) for board in logs}
    try:
        address = {board: _wait_joined(p, logs[board]) for board, p in workers.items()}
        run = _pytest(scheduler, url, env=env)
        output = run.communicate(timeout=240)[0]
    finally:
        for p in workers.values():
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
    assert run.returncode == 0, output[-4000:]
    assert "4 passed" in output, output[-4000:]
    store = ResultsStore(url)
    records = [r for run_ in store.runs() for r in store.results_for_run(run_.id)]
    assert {(r.device, r.variant) for r in records} == {(b, v) for b in BOARDS for v in ("int8", "float32")}
    for r in records:  # stored by the controller, measured on the board's own worker
        assert r.status == "ok", (r.device, r.variant, r.message)
        assert r.details["worker"] == address[r.device], (r.device, r.details)
    for board in BOARDS:  # the workers' job log: one job at a time per board
        _no_overlap([(r.details["job_started"], r.details["job_ended"]) for r in records if r.device == board], board)
    log = LeaseManager(url).log()
    for board in BOARDS:  # the lease log: each job's lease taken by the board's worker, never two at once
        held = [e for e in log if e["device"] == board]
        assert len(held) == 2, held
        assert all(e["released_at"] is not None for e in held), held
        _no_overlap([(e["acquired_at"], e["released_at"]) for e in held], f"{board}'s lease")
        pids = {r.details["worker_pid"] for r in records if r.device == board}
        assert pids == {workers[board].pid}, (pids, workers[board].pid)
        assert all(f":{workers[board].pid}:" in e["owner"] for e in held), held


def test_a_worker_killed_mid_job_is_infra_error_and_the_run_goes_on(scheduler, tmp_path, state_dir):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    env = _env(state_dir)
    logs: dict[str, list[str]] = {"qemu-m4f": [], "qemu-m3": []}
    workers = {board: _worker(scheduler, board, env) for board in logs}
    try:
        address = {board: _wait_joined(p, logs[board]) for board, p in workers.items()}
        run = _pytest(scheduler, url, env=env)
        # kill qemu-m3's worker once its first job holds the board (its lease is taken)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["device"] == "qemu-m3" for e in LeaseManager(url).log()):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("qemu-m3's job never started")
        os.killpg(workers["qemu-m3"].pid, signal.SIGKILL)
        output = run.communicate(timeout=240)[0]
    finally:
        for p in workers.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
    assert run.returncode == 1, output[-4000:]  # the killed board's tests fail, the rest pass
    assert "2 failed, 2 passed" in output, output[-4000:]
    store = ResultsStore(url)
    records = {(r.device, r.variant): r for run_ in store.runs() for r in store.results_for_run(run_.id)}
    killed = address["qemu-m3"]
    lost = [records[("qemu-m3", v)] for v in ("int8", "float32")]
    assert all(r.status == "infra-error" for r in lost), [(r.status, r.message) for r in lost]
    assert any(f"worker {killed} died while running qemu-m3 sine/" in r.message for r in lost), \
        [r.message for r in lost]
    assert all(killed in r.message and "not used again tonight" in r.message for r in lost), [r.message for r in lost]
    for v in ("int8", "float32"):  # the other board's results are kept
        kept = records[("qemu-m4f", v)]
        assert kept.status == "ok" and kept.details["worker"] == address["qemu-m4f"], (kept.status, kept.message)


def _home(tmp_path: Path, name: str, state_dir: Path) -> Path:
    """A state folder of its own (another machine's), with the zoo's sine already converted."""
    import shutil

    home = tmp_path / name
    (home / "models").mkdir(parents=True)
    for built in (state_dir / "models").glob("sine-*"):
        shutil.copytree(built, home / "models" / built.name)
    return home


def test_a_firmware_built_on_one_machine_is_measured_on_another_without_a_rebuild(scheduler, tmp_path, state_dir):
    """Two workers with state folders of their own (two machines): the host-only prepare job
    builds on one, the board job on the other installs that ELF by its build key and measures
    it; nothing is built twice."""
    import hashlib

    from distributed import Client

    from farm.board.leases import LeasePolicy
    from farm.config.inventory import load_inventory
    from farm.scale.jobs import MeasureSpec, measure_job, prepare_job

    env = _env(state_dir)
    builder_home, board_home = _home(tmp_path, "builder", state_dir), _home(tmp_path, "bench", state_dir)
    logs: dict[str, list[str]] = {"builder": [], "bench": []}
    builder = subprocess.Popen([sys.executable, "-m", "farm", "--devices", str(DEVICES), "worker", "--scheduler",
                                scheduler, "--host", "no-bench-here", "--listen", "127.0.0.1"], cwd=REPO,
                               env={**env, "FARM_HOME": str(builder_home)}, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    bench = _worker(scheduler, "qemu-m3", {**env, "FARM_HOME": str(board_home)})
    try:
        builder_address = _wait_joined(builder, logs["builder"])
        bench_address = _wait_joined(bench, logs["bench"])
        device = {d.name: d for d in load_inventory(DEVICES).devices}["qemu-m3"]
        spec = MeasureSpec(device, "sine", "int8", LeasePolicy(f"sqlite:///{tmp_path / 'leases.db'}", wait=0.0))
        with Client(scheduler, set_as_default=False) as client:
            prepared = client.submit(prepare_job, device, "sine", "int8", "optimized", spec.project,
                                     workers=[builder_address], pure=False, key="prepare-shipped")
            measured = client.submit(measure_job, spec, prepared, "measure-shipped", key="measure-shipped",
                                     resources={"board:qemu-m3": 1}, pure=False)
            outcome = measured.result(timeout=600)
    finally:
        for p in (builder, bench):
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
    record = outcome.record
    assert record.status == "ok", (record.status, record.message, logs)
    assert record.details["worker"] == bench_address and record.details["prepare_worker"] == builder_address
    assert record.details["artifact"].startswith(f"installed from {builder_address}"), record.details
    built = [p.parent for p in (builder_home / "builds").glob("*/platformio.ini")]
    assert len(built) == 1  # built once, on the builder
    elf = built[0] / ".pio" / "build" / "farm" / "firmware.elf"
    assert record.elf_sha256 == hashlib.sha256(elf.read_bytes()).hexdigest()
    assert not list((board_home / "builds").glob("*/platformio.ini"))  # never built on the bench host
    installed = board_home / "builds" / built[0].name / "build.json"
    assert "installed_from" in installed.read_text()
