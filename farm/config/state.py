"""The state folder: caches, builds, the PlatformIO core dir and the results database."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """``$FARM_HOME`` if set, else ``.farm`` in the current directory."""
    path = Path(os.environ.get("FARM_HOME", ".farm")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_url(state: Path) -> str:
    return os.environ.get("FARM_DB_URL", f"sqlite:///{state / 'results.db'}")
