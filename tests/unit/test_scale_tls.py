"""A lab cluster's TLS (farm/scale/security.py): members with a certificate of the lab's CA join,
a worker without one is refused; the inventory's cluster: section names files, never secrets."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farm.config.inventory import InventoryError, load_inventory
from farm.scale.security import ClusterConfigError, security_for

REPO = Path(__file__).resolve().parents[2]

DEVICE = """\
devices:
  - name: qemu-m3
    core: cortex-m3
    fpu: none
    dsp: false
    clock_hz: 25000000
    flash_bytes: 4194304
    ram_bytes: 4194304
    board: qemu-mps2-an385
    emulator: {kind: qemu, machine: mps2-an385}
"""


def _pem_pair(folder: Path, name: str, issuer: tuple | None = None) -> tuple:
    """A key and a certificate for ``name``: self-signed (a CA) or signed by ``issuer`` (key, cert)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key, signer_cert = issuer if issuer else (key, None)
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(signer_cert.subject if signer_cert else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if issuer is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key, cert


def _lab(folder: Path, ca_name: str, member: str) -> Path:
    """An inventory whose cluster: section names a CA and a member certificate signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _pem_pair(folder, ca_name)
    _pem_pair(folder, member, issuer=ca)
    inventory = folder / "devices.yaml"
    inventory.write_text(DEVICE + f"cluster:\n  tls_ca_file: {ca_name}.pem\n  tls_cert: {member}.pem\n"
                                  f"  tls_key: {member}-key.pem\n")
    return inventory


def _worker(inventory: Path, address: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FARM_SCHEDULER"}
    return subprocess.run([sys.executable, "-m", "farm", "--devices", str(inventory), "worker", "--scheduler", address,
                           "--boards", "qemu-m3", "--listen", "127.0.0.1", "--connect-timeout", "6"],
                          cwd=REPO, env=env, text=True, capture_output=True, timeout=90)


@pytest.fixture
def tls_scheduler(tmp_path: Path):
    """A TLS-only scheduler on loopback with the lab's certificates, and the lab's inventory."""
    from distributed import LocalCluster

    from farm.scale.cluster import quiet_logs

    quiet_logs()
    lab = _lab(tmp_path / "lab", "lab-ca", "member")
    security = security_for(load_inventory(lab).cluster_config, lab)
    cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, protocol="tls://",
                           security=security, scheduler_kwargs={"port": 0})
    yield cluster, lab
    cluster.close()


def _workers(cluster) -> int:
    return len(cluster.scheduler.workers)


def test_a_worker_with_the_labs_certificate_joins(tls_scheduler):
    cluster, lab = tls_scheduler
    address = cluster.scheduler_address
    assert address.startswith("tls://127.0.0.1:")
    env = {k: v for k, v in os.environ.items() if k != "FARM_SCHEDULER"}
    worker = subprocess.Popen([sys.executable, "-m", "farm", "--devices", str(lab), "worker", "--scheduler", address,
                               "--boards", "qemu-m3", "--listen", "127.0.0.1"], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _workers(cluster) == 0 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        assert _workers(cluster) == 1, worker.stdout.read() if worker.poll() is not None else "no worker joined"
        (info,) = cluster.scheduler.workers.values()
        assert info.resources == {"board:qemu-m3": 1.0}
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_worker_without_the_labs_certificate_is_refused(tls_scheduler, tmp_path):
    cluster, _lab_inventory = tls_scheduler
    rogue = _lab(tmp_path / "rogue", "rogue-ca", "intruder")  # a certificate of another CA
    refused = _worker(rogue, cluster.scheduler_address)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "could not join the scheduler" in refused.stderr, refused.stderr
    plain = _worker(REPO / "devices.yaml", cluster.scheduler_address.replace("tls://", "tcp://"))  # no TLS at all
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert _workers(cluster) == 0


def test_the_cluster_section_names_files_not_secrets(tmp_path):
    inventory = tmp_path / "devices.yaml"
    inventory.write_text(DEVICE + "cluster:\n  tls_ca_file: ca.pem\n  tls_cert: |\n    -----BEGIN CERTIFICATE-----\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory)
    assert f"{inventory}:13: cluster.tls_cert: expected the path of a PEM file, not its contents" in str(caught.value)
    inventory.write_text(DEVICE + "cluster:\n  tls_ca_file: ca.pem\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory)
    assert "cluster: TLS needs tls_ca_file, tls_cert and tls_key together; missing: tls_cert, tls_key" \
        in str(caught.value)
    inventory.write_text(DEVICE + "cluster:\n  scheduler: tls://lab:8786\n  tls_ca_file: ca.pem\n"
                                  "  tls_cert: me.pem\n  tls_key: me-key.pem\n")
    loaded = load_inventory(inventory)
    assert loaded.cluster.scheduler == "tls://lab:8786"
    assert loaded.cluster_config.tls_ca_file == tmp_path / "ca.pem"  # relative to the inventory file
    with pytest.raises(ClusterConfigError, match=r"cluster.tls_ca_file: no such file .*ca.pem"):
        security_for(loaded.cluster_config, inventory)
