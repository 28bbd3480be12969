"""A real PostgreSQL server for the tests of the results store (pytest plugin module).

- ``postgres_url`` (session): the server's URL: ``$FARM_TEST_PG_URL`` (``make test`` starts the
  project-local server with ``scripts/postgres.sh run`` and sets it), else this fixture starts
  that server itself (and stops it at the end). When no server can be had, the tests that need
  one FAIL in CI (``$CI`` set) and are skipped elsewhere, with the reason (tests/fixtures_tools.py).
- ``pg_db_url``: a fresh, empty database on that server for one test, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from fixtures_tools import setup_missing

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "postgres.sh"


def _unavailable(reason: str) -> NoReturn:
    """No server: the tools rule (tests/fixtures_tools.py): FAIL in CI, skip elsewhere."""
    setup_missing(f"no PostgreSQL server for the results-store tests: {reason} (make test starts it; or: "
                  "export FARM_TEST_PG_URL=$(bash scripts/postgres.sh start))")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("FARM_TEST_PG_URL")
    started = False
    if not url:
        running = subprocess.run(["bash", str(SCRIPT), "url"], capture_output=True, text=True)
        if running.returncode != 0:
            proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=180)
            if proc.returncode != 0:
                _unavailable((proc.stderr.strip().splitlines() or ["scripts/postgres.sh start failed"])[-1])
            started = True
            url = proc.stdout.strip().splitlines()[-1]
        else:
            url = running.stdout.strip().splitlines()[-1]
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        _unavailable(f"the psycopg driver is not installed ({exc})")
    yield url
    if started:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)


def _admin(url: str) -> tuple[str, dict[str, object]]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database or "postgres", {"host": parsed.host, "port": parsed.port, "user": parsed.username,
                                           "password": parsed.password, "dbname": parsed.database or "postgres"}


@pytest.fixture
def pg_db_url(postgres_url: str) -> Iterator[str]:
    """A new database for one test (``postgresql+psycopg://.../farm_test_<random>``)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"farm_test_{uuid.uuid4().hex[:12]}"
    _, params = _admin(postgres_url)
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable(f"cannot connect to {postgres_url}: {exc}")
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
