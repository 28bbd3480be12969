"""Tables created safely while other processes open the same new database
(farm.store.migrations.create_tables): the first night on a cluster opens the leases and
results of a fresh database from several workers at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, event, inspect
from sqlalchemy.exc import OperationalError

from farm.store.migrations import create_tables


def _metadata() -> tuple[MetaData, Table]:
    metadata = MetaData()
    table = Table("things", metadata, Column("id", Integer, primary_key=True))
    return metadata, table


def test_a_table_another_process_created_between_check_and_create_is_not_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    metadata, table = _metadata()
    other = create_engine(url)  # "the other worker": its own connection creates the table first

    def beaten_to_it(target: Table, connection: object, **_: object) -> None:
        if not inspect(other).has_table("things"):
            _metadata()[0].create_all(other)

    event.listen(table, "before_create", beaten_to_it)
    plain, plain_table = _metadata()
    event.listen(plain_table, "before_create", beaten_to_it)
    with pytest.raises(OperationalError, match="already exists"):  # what SQLAlchemy's create_all alone does
        plain.create_all(create_engine(url))
    (tmp_path / "new.db").unlink()
    create_tables(create_engine(url), metadata)  # the same race: tried again, finds the table there
    assert inspect(create_engine(url)).has_table("things")


def test_other_failures_are_raised(tmp_path: Path) -> None:
    metadata, _ = _metadata()
    (tmp_path / "a-folder.db").mkdir()  # not a database file
    with pytest.raises(OperationalError):
        create_tables(create_engine(f"sqlite:///{tmp_path / 'a-folder.db'}"), metadata)


def _open_leases(url: str, barrier: object) -> None:
    from farm.board.leases import LeaseManager

    barrier.wait()  # type: ignore[attr-defined]
    LeaseManager(url)


def test_workers_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_open_leases, args=(url, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    assert {"device_leases", "lease_log"} <= set(inspect(create_engine(url)).get_table_names())
