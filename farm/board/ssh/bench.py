"""A session with one bench host: ship the agent, copy images, flash, bridge a serial port.

Every remote command is an argument list joined with :func:`shlex.join`, so a
port name, a path or an option from the inventory is one quoted word on the
host's shell and can never run anything else. Files travel over SFTP, into the
agent's folder (``.cache/tinyfarm`` under the SSH user's home).

The serial bridge is the agent's ``bridge`` command on an exec channel: its
stdin/stdout carry the board's raw bytes. :class:`ChannelTransport` wraps that
channel as a farm Transport, so the framed protocol runs over SSH exactly as it
does over a local port; a dropped connection raises
:class:`~farm.board.infra.ConnectionLost` instead of waiting forever.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import socket
import time
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko

from farm.board.flashing import FlashPlan
from farm.board.infra import BenchHostError, BoardUnavailable, ConnectionLost, FlashError
from farm.board import agent as agent_module
from farm.board.ssh.connect import connect

REMOTE_DIR = PurePosixPath(".cache/tinyfarm")
AGENT_SOURCE = Path(agent_module.__file__)
COMMAND_TIMEOUT = 60.0
FLASH_TIMEOUT = 300.0


def remote_command(argv: list[str]) -> str:
    """One shell command line from an argument list, every word quoted."""
    return shlex.join(argv)


class ChannelTransport:
    """A farm Transport over an SSH channel running the agent's serial bridge."""

    def __init__(self, channel: paramiko.Channel, url: str, host_label: str) -> None:
        self.url = url
        self._channel = channel
        self._host = host_label
        self.lost = False

    def _lost(self, why: str) -> ConnectionLost:
        self.lost = True
        stderr = b""
        try:
            while self._channel.recv_stderr_ready():
                stderr += self._channel.recv_stderr(4096)
        except (OSError, EOFError):
            pass
        detail = stderr.decode(errors="replace").strip()
        return ConnectionLost(f"{self._host}: the serial bridge to {self.url} {why}"
                              + (f" ({detail})" if detail else ""))

    def write(self, data: bytes) -> None:
        if self._channel.closed or not self._channel.get_transport().is_active():
            raise self._lost("is closed (connection dropped)")
        try:
            self._channel.sendall(data)
        except (OSError, EOFError) as exc:
            raise self._lost(f"dropped while sending ({exc})") from None

    def read_some(self, timeout: float) -> bytes:
        self._channel.settimeout(max(timeout, 0.001))
        try:
            data = self._channel.recv(65536)
        except socket.timeout:
            if not self._channel.get_transport().is_active():
                raise self._lost("dropped (SSH connection lost)") from None
            return b""
        except (OSError, EOFError) as exc:
            raise self._lost(f"dropped ({exc})") from None
        if not data:
            raise self._lost("closed (connection dropped or the agent exited)")
        return data

    def close(self) -> None:
        try:
            self._channel.close()
        except (OSError, EOFError):
            pass


class BenchHost:
    """An open SSH connection to one bench host (a context manager)."""

    def __init__(self, name: str, host: Any) -> None:
        self.name = name
        self.host = host
        self.label = f"bench host {name}"
        self.client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.agent_path: PurePosixPath | None = None
        self.python = getattr(host, "python", "python3")
        self.work_dir = PurePosixPath(getattr(host, "work_dir", str(REMOTE_DIR)))

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> BenchHost:
        self.client = connect(self.name, self.host)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for thing in (self._sftp, self.client):
            try:
                if thing is not None:
                    thing.close()
            except (OSError, EOFError):
                pass
        self._sftp, self.client = None, None

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._client().open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise BenchHostError(f"{self.label}: cannot open SFTP: {exc}") from None
        return self._sftp

    def _client(self) -> paramiko.SSHClient:
        if self.client is None:
            raise BenchHostError(f"{self.label}: not connected (use BenchHost as a context manager)")
        return self.client

    # ----------------------------------------------------------------- files
    def _makedirs(self, path: PurePosixPath) -> None:
        current = PurePosixPath()
        for part in path.parts:
            current /= part
            try:
                self.sftp.stat(str(current))
            except FileNotFoundError:
                self.sftp.mkdir(str(current))

    def put(self, local: Path, remote: PurePosixPath) -> PurePosixPath:
        """Copy ``local`` to ``remote`` (relative paths are under the user's home) unless
        an identical-size copy is already there; return ``remote``."""
        try:
            self._makedirs(remote.parent)
            try:
                if self.sftp.stat(str(remote)).st_size == local.stat().st_size:
                    return remote
            except FileNotFoundError:
                pass
            tmp = remote.with_name(remote.name + ".part")
            self.sftp.put(str(local), str(tmp))
            self.sftp.posix_rename(str(tmp), str(remote))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise BenchHostError(f"{self.label}: copying {local.name} failed: {exc}") from None
        return remote

    def ensure_agent(self) -> PurePosixPath:
        """Ship the agent (content-addressed, so an unchanged agent is not copied again)
        and check that the host has Python 3 and pyserial."""
        if self.agent_path is not None:
            return self.agent_path
        digest = hashlib.sha256(AGENT_SOURCE.read_bytes()).hexdigest()[:12]
        path = self.put(AGENT_SOURCE, self.work_dir / f"agent-{digest}.py")
        code, out, err = self.run([self.python, str(path), "hello"])
        if code != 0:
            raise BenchHostError(f"{self.label}: the agent does not run there ({self.python} {path} hello "
                                 f"exited {code}: {(err or out).strip()[-300:]}); it needs Python 3")
        info = json.loads(out.strip().splitlines()[-1])
        if not info.get("pyserial"):
            raise BenchHostError(f"{self.label}: pyserial is not installed for {self.python} there "
                                 f"(python3 -m pip install pyserial, or apt install python3-serial)")
        self.agent_path = path
        return path

    def put_image(self, elf: Path, plan: FlashPlan) -> PurePosixPath:
        """Copy the ELF (and the build's other upload files) into a folder named by its hash."""
        digest = hashlib.sha256(elf.read_bytes()).hexdigest()[:16]
        folder = self.work_dir / "images" / digest
        for name in plan.image_files:
            local = elf if name == "firmware.elf" else elf.with_name(name)
            if local.is_file():
                self.put(local, folder / name)
        return folder / "firmware.elf"

    # ----------------------------------------------------------------- commands
    def run(self, argv: list[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
        """Run ``argv`` on the host (quoted word by word); (exit code, stdout, stderr)."""
        command = remote_command(argv)
        try:
            _stdin, stdout, stderr = self._client().exec_command(command, timeout=timeout)
            channel = stdout.channel
            deadline = time.monotonic() + timeout
            while not channel.exit_status_ready():
                if time.monotonic() > deadline:
                    channel.close()
                    raise BenchHostError(f"{self.label}: {argv[0]} ... did not finish within {timeout:.0f} s")
                if not channel.get_transport().is_active():
                    raise ConnectionLost(f"{self.label}: connection dropped while running {argv[0]} ...")
                time.sleep(0.01)
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            return channel.recv_exit_status(), out, err
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionLost(f"{self.label}: connection dropped while running {argv[0]} ...: {exc}") from None

    def agent(self, args: list[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
        return self.run([self.python, str(self.ensure_agent()), *args], timeout=timeout)

    def flash(self, plan: FlashPlan, image: PurePosixPath) -> dict[str, Any]:
        code, out, err = self.agent(plan.agent_args("flash", str(image)), timeout=FLASH_TIMEOUT)
        if code != 0:
            raise FlashError(f"{self.label}: flashing {plan.port} with {plan.protocol} failed: "
                             f"{err.strip()[-500:] or out.strip()[-500:]}")
        return json.loads(out.strip().splitlines()[-1])

    def stop(self, plan: FlashPlan) -> None:
        self.agent(plan.agent_args("stop"))

    def open_bridge(self, plan: FlashPlan, timeout: float = 15.0) -> ChannelTransport:
        """Start the agent's serial bridge; returns once the port is open on the host."""
        command = remote_command([self.python, str(self.ensure_agent()), *plan.agent_args("bridge")])
        url = f"ssh://{self.name}{plan.port if plan.port.startswith('/') else '/' + plan.port}"
        try:
            channel = self._client().get_transport().open_session(timeout=timeout)
            channel.exec_command(command)
            channel.settimeout(timeout)
            line = b""
            while not line.endswith(b"\n"):
                chunk = channel.recv(1)
                if not chunk:
                    err = channel.recv_stderr(4096).decode(errors="replace").strip()
                    raise BenchHostError(f"{self.label}: the serial bridge exited before opening {plan.port}"
                                         + (f": {err}" if err else ""))
                line += chunk
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionLost(f"{self.label}: connection dropped while opening {plan.port}: {exc}") from None
        if line != agent_module.BRIDGE_OK:
            why = line.removeprefix(agent_module.BRIDGE_ERROR).decode(errors="replace").strip()
            channel.close()
            raise BoardUnavailable(f"{self.label}: {why}")
        return ChannelTransport(channel, url, self.label)
