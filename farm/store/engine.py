"""One SQLAlchemy engine per database in the process, shared by the results store and the leases.

:func:`get_engine` normalises the URL (:func:`normalize_url`: plain ``postgresql://`` uses
psycopg 3) and hands back the same :class:`~sqlalchemy.engine.Engine` for the same
database, whichever module asks, from any thread. A SQLite engine waits up to 30 s for
a lock held by another process (the results and the leases of concurrent runs share one
file) and enforces foreign keys. :func:`redact` hides a URL's password for messages.

A forked child gets engines of its own: the parent's pooled connections are left to it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from farm.store.errors import ResultsError

#: how long a SQLite connection waits for another process's lock, in seconds
SQLITE_BUSY_TIMEOUT_S = 30

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_engines_pid = os.getpid()


def normalize_url(url: str | URL) -> URL:
    """The SQLAlchemy URL for ``url``; plain ``postgresql://`` (or ``postgres://``) uses psycopg 3."""
    if isinstance(url, URL):
        parsed = url
    else:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ResultsError(f"not a database URL: {url!r} (expected e.g. sqlite:///results.db or "
                               f"postgresql://user@host:5432/farm)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def redact(url: str | URL) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return str(url)


def get_engine(url: str | URL) -> Engine:
    """The process's engine for the database at ``url`` (created on first use).

    Raises :class:`~farm.store.errors.ResultsError` for a string that is not a database
    URL or a database whose driver is not installed. Connecting happens later, on use.
    """
    parsed = normalize_url(url)
    key = parsed.render_as_string(hide_password=False)
    global _engines_pid
    with _lock:
        if _engines_pid != os.getpid():  # forked: the parent's connections are not ours to use
            for engine in _engines.values():
                engine.dispose(close=False)
            _engines.clear()
            _engines_pid = os.getpid()
        engine = _engines.get(key)
        if engine is None:
            engine = _create(parsed)
            _engines[key] = engine
        return engine


def _create(parsed: URL) -> Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ResultsError(f"no database driver for {redact(parsed)}: {exc}") from None
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on (a run's results go with it); wait for another process's lock."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()
