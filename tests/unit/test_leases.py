"""Leases: one run per device, waiting or skipping, expiry without a heartbeat, quarantine."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from farm.board.leases import DeviceBusy, DeviceQuarantined, LeaseManager, quarantine_if_needed
from farm.store.results import ResultRecord


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.db'}"


def test_one_holder_at_a_time_and_the_other_is_told_who(url: str):
    a, b = LeaseManager(url, purpose="nightly run 1"), LeaseManager(url, purpose="nightly run 2")
    try:
        a.acquire("board-1")
        assert not b.try_acquire("board-1")
        with pytest.raises(DeviceBusy) as err:
            b.acquire("board-1", wait=0.2)
        assert "nightly run 1" in str(err.value) and "waiting" in str(err.value)
        assert b.state("board-1").state == "leased" and "nightly run 1" in b.state("board-1").text
        a.release("board-1")
        b.acquire("board-1")
        assert a.state("board-1").owner == b.owner_label
    finally:
        a.close()
        b.close()


def test_waiting_gets_the_device_when_it_is_released(url: str):
    a, b = LeaseManager(url), LeaseManager(url)
    a.acquire("board-1")
    threading.Timer(0.3, a.release, args=("board-1",)).start()
    messages: list[str] = []
    started = time.monotonic()
    b.acquire("board-1", wait=10, poll=0.05, on_wait=messages.append)
    assert 0.25 < time.monotonic() - started < 5
    assert messages and "busy" in messages[0]
    (first, second) = b.log("board-1")
    assert first["released_at"] <= second["acquired_at"]
    a.close()
    b.close()


def test_a_lease_without_heartbeat_expires_by_itself(url: str):
    dead = LeaseManager(url, ttl=0.3, heartbeat=3600)  # never renews in time: a hung or killed run
    alive = LeaseManager(url)
    dead.acquire("board-1")
    assert not alive.try_acquire("board-1")
    time.sleep(0.4)
    assert alive.try_acquire("board-1")
    first = alive.log("board-1")[0]
    assert first["ended"] == "expired" and first["released_at"] <= alive.log("board-1")[1]["acquired_at"]
    dead.renew()
    assert "board-1" in dead.lost
    alive.close()
    dead._stop.set()


def test_the_heartbeat_keeps_a_lease(url: str):
    holder = LeaseManager(url, ttl=0.3, heartbeat=0.05)
    other = LeaseManager(url)
    holder.acquire("board-1")
    time.sleep(0.8)
    assert not other.try_acquire("board-1")
    holder.close()
    assert other.try_acquire("board-1")
    other.close()


def test_a_killed_local_holder_loses_its_lease_at_once(url: str):
    code = (f"from farm.board.leases import LeaseManager; m = LeaseManager({url!r}, ttl=3600); "
            f"m.acquire('board-1'); print('held', flush=True); import time; time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    other = LeaseManager(url)
    assert not other.try_acquire("board-1")
    holder.kill()
    holder.wait()
    assert other.try_acquire("board-1")  # its pid is gone: no need to wait for the TTL
    other.close()


def test_quarantine_blocks_leases_until_cleared(url: str):
    manager = LeaseManager(url)
    record = ResultRecord(device="board-1", model="sine", variant="int8", status="infra-error",
                          message="board-1 did not identify after 3 attempts", details={"quarantine": True})
    assert quarantine_if_needed(manager, "board-1", record)
    with pytest.raises(DeviceQuarantined) as err:
        manager.acquire("board-1")
    assert "did not identify" in str(err.value) and "--clear-quarantine board-1" in str(err.value)
    state = manager.state("board-1")
    assert state.state == "quarantined" and state.to_json()["until"]
    assert manager.clear_quarantine("board-1")
    manager.acquire("board-1")
    other = ResultRecord(device="board-1", model="sine", variant="int8", status="infra-error",
                         message="SSH connection dropped", details={"quarantine": False})
    assert not quarantine_if_needed(manager, "board-1", other)  # the host's fault, not the board's
    manager.close()


def test_farm_devices_shows_leases_and_quarantine(url: str, tmp_path: Path):
    import json
    import os

    repo = Path(__file__).resolve().parents[2]
    holder = LeaseManager(url, purpose="nightly run 7")
    holder.acquire("qemu-m4f")
    holder.quarantine("qemu-rv32", "qemu-rv32 did not identify on /dev/ttyACM3 after 3 attempts")

    def farm_devices(*extra: str) -> list[dict]:
        proc = subprocess.run([sys.executable, "-m", "farm", "--devices", str(repo / "devices.yaml"), "devices",
                               "--json", *extra], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "FARM_DB_URL": url})
        assert proc.returncode == 0, proc.stderr
        return {row["name"]: row for row in json.loads(proc.stdout)}

    rows = farm_devices()
    assert rows["qemu-m4f"]["state"].startswith("leased by nightly run 7 (pid")
    assert rows["qemu-m4f"]["lease"]["state"] == "leased" and rows["qemu-m4f"]["lease"]["until"]
    assert rows["qemu-rv32"]["state"].startswith("quarantined until") and "did not identify" in rows["qemu-rv32"]["state"]
    assert rows["qemu-m3"]["state"] == "free"
    rows = farm_devices("--clear-quarantine", "qemu-rv32")
    assert rows["qemu-rv32"]["state"] == "free"
    holder.close()


def test_leases_work_on_a_plain_postgresql_url(pg_db_url: str):
    """A plain postgresql:// URL (as users write it) takes the same driver as the results store."""
    from sqlalchemy.engine import make_url

    plain = make_url(pg_db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    assert plain.startswith("postgresql://")
    a, b = LeaseManager(plain, purpose="nightly run 1"), LeaseManager(plain, purpose="nightly run 2")
    try:
        a.acquire("board-1")
        assert not b.try_acquire("board-1")
        a.release("board-1")
        assert b.try_acquire("board-1")
    finally:
        a.close()
        b.close()


def _holder_process(url: str, device: str, *, ttl: float = 3600) -> subprocess.Popen:
    """Another run: a process that takes ``device``'s lease, says so, and holds it until told."""
    code = (f"import sys; from farm.board.leases import LeaseManager; m = LeaseManager({url!r}, ttl={ttl}, "
            f"purpose='holder process'); m.acquire({device!r}); print('held', flush=True); sys.stdin.readline(); "
            f"m.release({device!r}); print('released', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_lease_whose_holder_process_is_gone_is_shown_free(url: str):
    """farm devices (LeaseManager.states) shows a SIGKILLed holder's device free at once,
    not leased until its TTL, and the lease log records that lease as expired."""
    import signal

    holder = _holder_process(url, "board-1")
    viewer = LeaseManager(url, purpose="farm devices")
    try:
        (state,) = viewer.states(["board-1"])
        assert state.state == "leased" and "holder process" in state.owner
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        (state,) = viewer.states(["board-1"])
        assert state.state == "free" and state.text == "free"
        (entry,) = viewer.log("board-1")
        assert entry["ended"] == "expired" and entry["released_at"] is not None
        assert "holder process" in entry["owner_label"]
        assert viewer.try_acquire("board-1")  # and it can be had
        assert [e["ended"] for e in viewer.log("board-1")] == ["expired", None]
    finally:
        if holder.poll() is None:
            holder.kill()
        viewer.close()


def test_a_live_holder_process_keeps_its_lease_in_the_states(url: str):
    holder = _holder_process(url, "board-1")
    viewer = LeaseManager(url)
    try:
        assert viewer.state("board-1").state == "leased"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert viewer.state("board-1").state == "free"
        (entry,) = viewer.log("board-1")
        assert entry["ended"] == "released"
    finally:
        holder.kill()
        holder.wait()
        viewer.close()


def test_one_shared_manager_per_database_with_a_working_heartbeat(url: str, tmp_path: Path):
    from farm.board.leases import LeasePolicy, hold, shared_manager
    from farm.store.engine import get_engine

    same_file = f"sqlite:///{tmp_path}/../{tmp_path.name}/results.db"  # the same database, spelled otherwise
    policy = LeasePolicy(url, wait=0, purpose="farm infer")
    manager = policy.manager()
    assert manager is shared_manager(url) is LeasePolicy(same_file).manager()
    assert manager.engine is get_engine(url)  # the results store's engine, not a second one
    manager.ttl, manager.heartbeat_seconds = 0.4, 0.05  # this test's database only: a fast heartbeat
    for _ in range(2):
        with hold("board-1", policy):
            assert manager.holds("board-1") and manager._thread is not None and manager._thread.is_alive()
            state = LeaseManager(url).state("board-1")
            assert state.state == "leased" and state.owner.startswith("farm infer (pid")
        assert not manager.holds("board-1") and LeaseManager(url).state("board-1").state == "free"
    expires = []
    with hold("board-2", policy):  # the heartbeat goes on between holds
        for _ in range(3):
            time.sleep(0.3)
            expires.append(LeaseManager(url).state("board-2").until)
        assert not LeaseManager(url).try_acquire("board-2")  # renewed past its 0.4 s TTL
    assert expires == sorted(expires) and expires[0] < expires[-1]
    assert [e["ended"] for e in manager.log()] == ["released"] * 3


def test_hold_is_a_no_op_when_this_process_holds_the_lease_already(url: str):
    from farm.board.leases import LeasePolicy, held_in_process, hold

    run = LeaseManager(url, purpose="farm run 3")  # e.g. farm run, per device
    run.acquire("board-1")
    try:
        assert held_in_process(url, "board-1") and not held_in_process(url, "board-2")
        with hold("board-1", LeasePolicy(url, wait=0, purpose="farm")):
            pass
        assert run.holds("board-1") and run.state("board-1").owner.startswith("farm run 3")
        assert len(run.log("board-1")) == 1  # no second lease was taken or given back
    finally:
        run.close()
    assert not held_in_process(url, "board-1")


def test_hold_waits_for_another_process_or_says_it_is_busy(url: str):
    from farm.board.leases import LeasePolicy, hold

    holder = _holder_process(url, "board-1")
    try:
        with pytest.raises(DeviceBusy) as err, hold("board-1", LeasePolicy(url, wait=0)):
            raise AssertionError("must not get a busy device")
        assert "holder process" in str(err.value)
        threading.Timer(0.5, lambda: (holder.stdin.write("\n"), holder.stdin.flush())).start()
        started = time.monotonic()
        with hold("board-1", LeasePolicy(url, wait=5)):
            assert time.monotonic() - started >= 0.4
    finally:
        holder.kill()
        holder.wait()
