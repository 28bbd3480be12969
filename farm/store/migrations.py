"""Bring a database made by an older tinyfarm to today's tables, in one pass at open.

Adds the columns it lacks (all of them nullable: host, pid and process start of a run,
for instance) and drops NOT NULL where the schema allows NULL (tinyfarm <= 0.1 created
findings.before/after NOT NULL, so a finding about a combination new to the baseline
could not be stored). Works on SQLite (which cannot alter a column: the table is
rebuilt) and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, MetaData, Table, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from farm.store.errors import ResultsError


#: how many times :func:`create_tables` tries again after another process created a table first
CREATE_ATTEMPTS = 5


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create the tables (and indexes) of ``metadata`` that are missing, safely while other
    processes open the same new database: SQLAlchemy's ``create_all`` checks, then creates, so
    two processes can both find a table missing and the second one's CREATE fails ("table ...
    already exists"; on PostgreSQL a duplicate table or type). Such a failure is tried again,
    which then finds the table there; one that persists (or any other error) is raised."""
    for attempt in range(CREATE_ATTEMPTS):
        try:
            metadata.create_all(engine)
            return
        except SQLAlchemyError as exc:
            if attempt == CREATE_ATTEMPTS - 1 or not _created_by_another(exc):
                raise


def _created_by_another(exc: SQLAlchemyError) -> bool:
    text_of = str(getattr(exc, "orig", None) or exc).lower()
    return "already exists" in text_of or "duplicate" in text_of


def migrate_schema(engine: Engine, metadata: MetaData) -> None:
    """Create the tables of ``metadata`` that are missing, then migrate the ones that exist."""
    create_tables(engine, metadata)
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"]: c for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        for column in missing:
            _add_column(engine, table, column)
        stale = [c.name for c in table.columns
                 if c.nullable and not c.primary_key and c.name in have and not have[c.name]["nullable"]]
        if stale:
            _drop_not_null(engine, inspector, metadata, table, stale)


def _add_column(engine: Engine, table: Table, column: Column[Any]) -> None:
    kind = column.type.compile(dialect=engine.dialect)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
    except SQLAlchemyError:
        # another process opening the same old database may have added it a moment ago
        if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
            raise


def _drop_not_null(engine: Engine, inspector: Any, metadata: MetaData, table: Table, columns: list[str]) -> None:
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            for name in columns:
                conn.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{name}" DROP NOT NULL'))
        return
    # SQLite cannot alter a column: rebuild the table and copy its rows
    if any(fk.column.table is table for other in metadata.sorted_tables for fk in other.foreign_keys):
        raise ResultsError(f"cannot migrate table {table.name}: other tables reference it")
    old = f"{table.name}_before_migration"
    copied = ", ".join(f'"{c.name}"' for c in table.columns)  # missing ones were added just before
    with engine.begin() as conn:
        for index in inspector.get_indexes(table.name):
            conn.execute(text(f'DROP INDEX IF EXISTS "{index["name"]}"'))
        conn.execute(text(f'ALTER TABLE "{table.name}" RENAME TO "{old}"'))
        table.create(conn)
        conn.execute(text(f'INSERT INTO "{table.name}" ({copied}) SELECT {copied} FROM "{old}"'))
        conn.execute(text(f'DROP TABLE "{old}"'))
