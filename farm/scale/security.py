"""A lab cluster's TLS (distributed.Security) from the inventory's ``cluster:`` section.

Every member -- scheduler, workers, the controller's client -- presents a certificate
signed by the lab's CA (``tls_ca_file``) and requires one from its peer
(``require_encryption``): a worker without the right certificate cannot join. The
section names files only; the inventory holds no secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FIELDS = ("tls_ca_file", "tls_cert", "tls_key")


class ClusterConfigError(ValueError):
    """A cluster that cannot be set up as configured (a ``cluster:`` section's file is missing,
    a local cluster's size is not a number of workers)."""


def security_for(cluster: Any, source: Path | None = None) -> Any:
    """The distributed.Security of an inventory's ``cluster:`` section (already resolved,
    farm.config.inventory.Inventory.cluster_config); None without TLS files (plain TCP,
    for a scheduler on localhost)."""
    if cluster is None or not cluster.tls:
        return None
    where = f"{source}: " if source else ""
    for name in FIELDS:
        path = Path(getattr(cluster, name))
        if not path.is_file():
            raise ClusterConfigError(f"{where}cluster.{name}: no such file {path}")
    from distributed.security import Security

    ca, cert, key = (str(getattr(cluster, name)) for name in FIELDS)
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                    tls_scheduler_cert=cert, tls_scheduler_key=key,
                    tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)


def local_address(security: Any, port: int = 0) -> str:
    """The scheduler's listening address on localhost (tls:// when ``security`` has TLS)."""
    scheme = "tls" if security is not None and security.require_encryption else "tcp"
    return f"{scheme}://127.0.0.1:{port}"
