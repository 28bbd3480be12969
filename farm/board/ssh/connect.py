"""SSH connections to bench hosts (paramiko), with host keys verified against known_hosts.

An unknown host key is refused -- with its fingerprint and how to accept it --
unless the inventory sets ``trust_on_first_use: true`` for that host, in which
case it is recorded in the host's known_hosts file and checked from then on. A
*changed* key is always refused. Credentials come from the host's ``key_file``
or the SSH agent; nothing secret is in the inventory.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path
from typing import Any

import paramiko

from farm.board.infra import BenchHostError, HostKeyError

CONNECT_TIMEOUT = 10.0
KEEPALIVE_SECONDS = 5


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


def known_hosts_file(host: Any) -> Path:
    return host.known_hosts_path or Path("~/.ssh/known_hosts").expanduser()


def _host_label(name: str, host: Any) -> str:
    return f"bench host {name} ({host.user}@{host.address}:{host.port})"


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, name: str, host: Any) -> None:
        self.name, self.host = name, host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        file = known_hosts_file(self.host)
        scan = f"ssh-keyscan -p {self.host.port} {self.host.address}" if self.host.port != 22 \
            else f"ssh-keyscan {self.host.address}"
        raise HostKeyError(
            f"{_host_label(self.name, self.host)}: unknown host key {fingerprint(key)}, not in {file}; "
            f"refusing to connect. Check the fingerprint on the host, then add it "
            f"({scan} >> {file}) or set trust_on_first_use: true for this host"
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Record an unknown key in the host's known_hosts file (a changed key is still refused)."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self.file))


def connect(name: str, host: Any, timeout: float = CONNECT_TIMEOUT) -> paramiko.SSHClient:
    """An authenticated SSH connection to the bench host ``name`` (inventory ``hosts:`` entry).

    Raises HostKeyError (unknown or changed key) or BenchHostError (unreachable,
    authentication failed) with a sentence naming the host; never prompts.
    """
    client = paramiko.SSHClient()
    file = known_hosts_file(host)
    if file.is_file():
        client.load_host_keys(str(file))
    if host.trust_on_first_use:
        client.set_missing_host_key_policy(_TrustOnFirstUse(file))
    else:
        client.set_missing_host_key_policy(_RefuseUnknown(name, host))
    label = _host_label(name, host)
    key_file = host.key_path
    if key_file is not None and not key_file.is_file():
        raise BenchHostError(f"{label}: key_file {key_file} does not exist")
    try:
        client.connect(
            host.address, port=host.port, username=host.user,
            key_filename=str(key_file) if key_file else None,
            look_for_keys=key_file is None, allow_agent=True,
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
        )
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"{label}: HOST KEY CHANGED: {file} has {fingerprint(exc.expected_key)}, the host offered "
            f"{fingerprint(exc.key)}; refusing to connect (a man-in-the-middle, or a reinstalled host: "
            f"if you know why it changed, remove the old line from {file})"
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        how = f"key_file {key_file}" if key_file else "the SSH agent / default keys"
        raise BenchHostError(f"{label}: authentication as {host.user} with {how} failed: {exc}") from None
    except (OSError, socket.timeout, paramiko.SSHException, EOFError) as exc:
        client.close()
        raise BenchHostError(f"{label} is unreachable: {exc or type(exc).__name__}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(KEEPALIVE_SECONDS)
    return client
