"""Remote bench hosts for real: a loopback sshd plays the host, an emulated board its serial board.

build -> SFTP copy -> flash on the host (the agent's qemu flasher) -> the host's
serial port bridged back over SSH -> the framed protocol -> a stored result whose
provenance names the host. And the failure paths: unknown and changed host keys,
a host that is down, a connection dropped in the middle of a run -- each a clear
``infra-error``, never a hang.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paramiko
import pytest

from farm.board.infra import HostKeyError
from farm.config.inventory import load_inventory
from farm.measure.timing import MeasurePlan
from farm.measure.job import measure_one
from farm.board.ssh.bench import remote_command
from farm.board.ssh.connect import connect, fingerprint
from farm.store.results import ResultsStore
from fixtures_sshd import LoopbackSshd, sshd  # noqa: F401  (fixture)



DEVICE = """\
  - name: {name}
    core: cortex-m3
    fpu: none
    dsp: false
    clock_hz: 25000000
    flash_bytes: 4194304
    ram_bytes: 4194304
    board: qemu-mps2-an385
    serial:
      host: bench-1
      port: "{port}"
    flash:
      protocol: qemu
      machine: mps2-an385
      icount_shift: 6
    power: {{kind: model, voltage: 3.3, ua_per_mhz: 200.0}}
    tags: [remote]
"""


def _inventory(tmp_path: Path, server: LoopbackSshd, *, port: str | None = None, **host: object):
    port = port or str(server.root / "bench-dev" / f"ttyFARM-{tmp_path.name}")
    text = "hosts:\n" + server.hosts_yaml(**host) + "devices:\n" + DEVICE.format(name="remote-m3", port=port)
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    return load_inventory(path).device("remote-m3")


def test_measure_through_loopback_sshd_stores_the_host(sshd: LoopbackSshd, tmp_path: Path, state_dir: Path):  # noqa: F811
    device = _inventory(tmp_path, sshd)
    record = measure_one(device, "sine", "int8", state=state_dir)
    assert record.status == "ok", record.message
    assert record.host == "bench-1"
    assert record.unit == "instructions" and record.bit_exact_fraction == 1.0
    # the same ELF on the same emulated core: the count over SSH is the count over TCP
    emulated = load_inventory(Path(__file__).parents[2] / "devices.yaml").device("qemu-m3")
    assert record.count_median == measure_one(emulated, "sine", "int8", state=state_dir).count_median
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    run = store.start_run("run")
    store.add_result(run, record)
    (stored,) = store.results_for_run(run)
    assert stored.host == "bench-1" and stored.status == "ok" and stored.elf_sha256 == record.elf_sha256
    # the agent and the image went over SFTP into the host's work_dir; the board was powered off after
    work = sshd.root / "bench-home"
    assert list(work.glob("agent-*.py")) and list((work / "images").glob("*/firmware.elf"))
    assert not Path(device.serial.port + ".pid").exists()


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd: LoopbackSshd, tmp_path: Path, state_dir: Path):  # noqa: F811
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    device = _inventory(tmp_path, sshd, known_hosts=empty)
    record = measure_one(device, "sine", "int8", state=state_dir)
    assert record.status == "infra-error"
    assert "unknown host key" in record.message and "SHA256:" in record.message
    assert "trust_on_first_use" in record.message and "bench-1" in record.message
    assert empty.read_text() == ""


def test_trust_on_first_use_records_the_key(sshd: LoopbackSshd, tmp_path: Path):  # noqa: F811
    known = tmp_path / "known_hosts"
    device = _inventory(tmp_path, sshd, known_hosts=known, trust_on_first_use=True)
    connect("bench-1", device.bench_host).close()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519" in known.read_text()
    connect("bench-1", device.bench_host).close()  # and it is checked from then on


def test_changed_host_key_is_refused_even_with_tofu(sshd: LoopbackSshd, tmp_path: Path):  # noqa: F811
    impostor = paramiko.Ed25519Key(filename=str(sshd.client_key))  # any other ed25519 key
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {impostor.get_base64()}\n")
    device = _inventory(tmp_path, sshd, known_hosts=known, trust_on_first_use=True)
    with pytest.raises(HostKeyError) as err:
        connect("bench-1", device.bench_host)
    assert "HOST KEY CHANGED" in str(err.value) and fingerprint(impostor) in str(err.value)


def test_host_down_is_an_infra_error(sshd: LoopbackSshd, tmp_path: Path, state_dir: Path):  # noqa: F811
    import socket

    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    device = _inventory(tmp_path, sshd)
    device._bench_host = device.bench_host.model_copy(update={"port": dead_port})
    started = time.monotonic()
    record = measure_one(device, "sine", "int8", state=state_dir)
    assert record.status == "infra-error" and "unreachable" in record.message, record.message
    assert time.monotonic() - started < 15


def test_connection_dropped_mid_run_is_an_infra_error(sshd: LoopbackSshd, tmp_path: Path, state_dir: Path):  # noqa: F811
    device = _inventory(tmp_path, sshd)
    dropped = threading.Event()
    earlier_bridges = _bridge_pids()  # from earlier tests, still winding down: not this run's

    def cut_when_bridged() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _bridge_pids() - earlier_bridges:
                time.sleep(0.3)  # in the middle of the timed windows
                if sshd.drop_connections():
                    dropped.set()
                return
            time.sleep(0.01)

    killer = threading.Thread(target=cut_when_bridged)
    killer.start()
    started = time.monotonic()
    record = measure_one(device, "sine", "int8", state=state_dir, plan=MeasurePlan(windows=400))
    killer.join()
    assert dropped.is_set()
    assert record.status == "infra-error", (record.status, record.message)
    assert "bench host bench-1" in record.message and "dropped" in record.message
    assert time.monotonic() - started < 30
    # the agent saw its console go away and powered the emulated board off: nothing left running
    pid_file = Path(device.serial.port + ".pid")
    deadline = time.monotonic() + 10
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_file.exists()


def _bridge_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"/agent-" in cmdline and b"\0bridge\0" in cmdline:
                pids.add(int(entry.name))
    return pids


def test_malicious_port_name_stays_one_word(sshd: LoopbackSshd, tmp_path: Path, state_dir: Path):  # noqa: F811
    marker = tmp_path / "pwned"
    port = str(sshd.root / "bench-dev" / f"tty;touch {marker};x$(touch {marker}2)`touch {marker}3`'")
    device = _inventory(tmp_path, sshd, port=port)
    record = measure_one(device, "sine", "int8", state=state_dir)
    assert record.status == "ok", record.message  # the port is used literally, as one path
    assert not list(tmp_path.glob("pwned*"))
    assert Path(port + ".log").exists() or not Path(port).exists()


def test_remote_commands_are_quoted_word_by_word():
    argv = ["python3", "agent.py", "bridge", "--port", "/dev/tty; rm -rf ~", "--set", "x=$(id)"]
    assert remote_command(argv) == "python3 agent.py bridge --port '/dev/tty; rm -rf ~' --set 'x=$(id)'"


def test_farm_run_through_the_bench_host_stores_the_host(sshd: LoopbackSshd, tmp_path: Path):  # noqa: F811
    """The same path through the real CLI (with its lease), as a user would run it."""
    import json
    import os
    import subprocess
    import sys

    _inventory(tmp_path, sshd)  # writes tmp_path / devices.yaml
    url = f"sqlite:///{tmp_path / 'cli-results.db'}"
    proc = subprocess.run([sys.executable, "-m", "farm", "run", "--devices", str(tmp_path / "devices.yaml"),
                           "--device", "remote-m3", "--model", "sine", "--variant", "int8", "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "FARM_DB_URL": url})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["host"] == "bench-1" and result["status"] == "ok" and result["unit"] == "instructions"
    store = ResultsStore(url)
    (stored,) = store.results_for_run(store.latest_run().id)
    assert stored.host == "bench-1" and stored.elf_sha256 == result["elf_sha256"]
    from farm.board.leases import LeaseManager

    (lease,) = LeaseManager(url).log("remote-m3")
    assert lease["ended"] == "released" and "farm run" in lease["owner_label"]
