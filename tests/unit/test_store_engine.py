"""One engine per database in the process (farm.store.engine), shared by the results store and
the leases, with the SQLite settings both need."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from farm.store.engine import SQLITE_BUSY_TIMEOUT_S, get_engine, normalize_url, redact
from farm.store.errors import ResultsError
from farm.store.results import ResultsStore


def test_one_engine_per_database_whatever_the_spelling_and_the_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = get_engine(url)
    assert get_engine(normalize_url(url)) is engine
    assert get_engine(f"sqlite:///{tmp_path / 'other.db'}") is not engine
    assert get_engine("postgresql://farm:pw@db:5432/farm") is get_engine("postgresql+psycopg://farm:pw@db:5432/farm")
    assert get_engine("postgresql://farm:pw@db:5432/farm") is not get_engine("postgresql://farm:other@db:5432/farm")
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(get_engine(f"sqlite:///{tmp_path / 't.db'}")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(e is seen[0] for e in seen)
    store = ResultsStore(url)
    assert store.engine is engine
    store.close()  # closes idle connections; the shared engine stays usable
    assert ResultsStore(url).latest_run() is None


def test_sqlite_connections_enforce_foreign_keys_and_wait_for_locks(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'nested' / 'r.db'}")  # the folder is made
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        assert cursor.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert cursor.execute("PRAGMA busy_timeout").fetchone() == (SQLITE_BUSY_TIMEOUT_S * 1000,)
    assert (tmp_path / "nested" / "r.db").is_file()


def test_bad_urls_and_missing_drivers_are_one_sentence() -> None:
    with pytest.raises(ResultsError, match="not a database URL: 'nope'"):
        get_engine("nope")
    with pytest.raises(ResultsError, match=r"no database driver for nosuchdb://u:\*\*\*@h/d"):
        get_engine("nosuchdb://u:secret@h/d")
    assert redact("postgresql://farm:secret@db/farm") == "postgresql://farm:***@db/farm"
