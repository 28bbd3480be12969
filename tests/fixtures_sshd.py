"""A real OpenSSH server on loopback that plays a bench host.

``/usr/sbin/sshd -D`` with a generated config: its own host key, its own
authorized key, a random port on 127.0.0.1, running as the current user (root
is fine: privilege separation gets its /run/sshd). The "bench host" is this
machine, so its boards are emulated boards exposed as serial devices (QEMU on a
pty, flashed by the agent's ``qemu`` flasher), reached only through SSH.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures_tools import require_tool


@dataclass
class LoopbackSshd:
    root: Path
    port: int
    user: str
    host_key: Path  # private; .pub beside it
    client_key: Path
    known_hosts: Path  # lists this server's host key
    process: subprocess.Popen

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listening daemon)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    pids.append(int(entry.name))
        return pids

    def drop_connections(self) -> int:
        """Kill every SSH connection (as a crashed host or a cut cable would)."""
        pids = self.session_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def hosts_yaml(self, name: str = "bench-1", **overrides: object) -> str:
        """A ``hosts:`` entry for this server; keyword arguments override its fields."""
        fields: dict[str, object] = {
            "address": "127.0.0.1", "port": self.port, "user": self.user, "key_file": self.client_key,
            "known_hosts": self.known_hosts, "python": "/usr/bin/python3",
            "work_dir": self.root / "bench-home", **overrides,
        }
        lines = [f"  {name}:"] + [f"    {k}: {str(v).lower() if isinstance(v, bool) else v}"
                                  for k, v in fields.items()]
        return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tinyfarm-test", "-f", str(path)],
                   check=True)


def start_sshd(root: Path) -> LoopbackSshd:
    daemon = require_tool("sshd")  # missing: skip, or FAIL in CI (tests/fixtures_tools.py)
    require_tool("ssh-keygen")
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = root / "host_ed25519", root / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = _free_port()
    known_hosts = root / "known_hosts"
    algo, key = host_key.with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {algo} {key}\n")
    user = getpass.getuser()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", f"AllowUsers {user}", "Subsystem sftp internal-sftp",
        "ClientAliveInterval 5", "LogLevel ERROR", "",
    ]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = open(root / "sshd.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([daemon, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {(root / 'sshd.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("sshd did not listen within 10 s") from None
            time.sleep(0.02)
    return LoopbackSshd(root, port, user, host_key, client_key, known_hosts, process)


def stop_sshd(server: LoopbackSshd) -> None:
    server.drop_connections()
    for pid_file in server.root.rglob("*.pid"):  # an emulated board the agent left running
        try:
            pid = int(pid_file.read_text().strip())
            if b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    stop_sshd(server)
