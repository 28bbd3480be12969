"""The results store: one row per (run, device, model, variant), with provenance.

SQLAlchemy 2.0 over any database URL: an SQLite file by default (the state
folder's ``results.db``, see :mod:`farm.config.state`), or PostgreSQL
(``postgresql://user@host:port/db``; the driver is psycopg 3), through the process's
one engine for that database (:mod:`farm.store.engine`, shared with the leases).
Tables are created on first use, and columns added since a database was created are
added to it (:mod:`farm.store.migrations`), so an older ``results.db`` keeps working.
Every :meth:`ResultsStore.add_result` commits on its own, so the results measured
before a crash, a hang or a Ctrl-C are never lost.

A run records the host, pid and start time of the process that started it
(:mod:`farm.store.liveness`). A run still ``running`` whose process on this host is
gone (killed, crashed) reads as ``aborted``, and is stored so, for every reader.

Besides runs and results the store keeps what the nightly judged: the baseline a
run was compared with and its findings (:class:`Finding`: a regression, a change,
an improvement ... per device, model, variant and metric), and the pinned
baseline (``farm baseline pin RUN``).

The records (:mod:`farm.store.records`), the error, the URL helpers and the
vocabularies are re-exported here, so ``from farm.store.results import ...`` names
all that a caller of the store needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from farm import __version__
from farm.store.engine import get_engine, normalize_url, redact
from farm.store.errors import ResultsError
from farm.store.liveness import process_gone, this_process
from farm.store.migrations import migrate_schema
from farm.store.records import (
    MODELLED_PREFIX,
    RESULT_STATUSES,
    RUN_KINDS,
    RUN_STATUSES,
    SEVERITIES,
    UNITS,
    Finding,
    ResultRecord,
    RunRecord,
    is_modelled,
)
from farm.store.status import RunStatus, Status, Unit
from farm.store.tables import Base, FindingRow, ResultRow, RunRow, SettingRow

__all__ = [
    "MODELLED_PREFIX", "RESULT_STATUSES", "RUN_KINDS", "RUN_STATUSES", "SEVERITIES", "UNITS",
    "Finding", "ResultRecord", "ResultsError", "ResultsStore", "RunRecord",
    "is_modelled", "normalize_url", "redact",
]

_PIN_KEY = "baseline.pin"
_RESULT_FIELDS = [f.name for f in dataclasses.fields(ResultRecord)]
_FINDING_FIELDS = [f.name for f in dataclasses.fields(Finding)]
#: what finish_run accepts: every status but running, and aborted (which only the store decides)
_FINAL_STATUSES = tuple(s for s in RunStatus if s not in (RunStatus.RUNNING, RunStatus.ABORTED))


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes, PostgreSQL its session's zone; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_kind(kind: str) -> None:
    if kind not in RUN_KINDS:
        raise ResultsError(f"unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")


class ResultsStore:
    """Runs and their results in the database at ``url`` (any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        parsed = normalize_url(url)
        self.url = url
        self.engine: Engine = get_engine(parsed)
        try:
            migrate_schema(self.engine, Base.metadata)
        except SQLAlchemyError as exc:  # cannot connect, no such database, ...: say which, no traceback
            self.engine.dispose()
            reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
            raise ResultsError(f"cannot open the results database {redact(parsed)}: {reason}") from None

    # ----------------------------------------------------------------- runs

    def start_run(self, kind: str, git_commit: str | None = None, farm_version: str | None = None) -> int:
        """A new ``running`` run of ``kind``, owned by this process (host, pid, start time)."""
        _check_kind(kind)
        me = this_process()
        run = RunRow(
            kind=kind,
            git_commit=git_commit,
            farm_version=farm_version or __version__,
            status=RunStatus.RUNNING.value,
            started_at=_now(),
            host=me.host,
            pid=me.pid,
            process_start=me.start,
        )
        with Session(self.engine) as session, session.begin():
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, status: str) -> None:
        if status not in _FINAL_STATUSES:
            raise ResultsError(f"unknown final run status {status!r}; expected one of {', '.join(_FINAL_STATUSES)}")
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            run.status = RunStatus(status).value
            run.finished_at = _now()

    def latest_run(self, kind: str | None = None) -> RunRecord | None:
        """The most recently started run (of ``kind``, when given), or None."""
        query = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(1)
        if kind is not None:
            _check_kind(kind)
            query = query.where(RunRow.kind == kind)
        with Session(self.engine) as session:
            run = session.scalars(query).first()
            return self._run_records([run])[0] if run is not None else None

    def runs(self, kind: str | None = None, *, last: int | None = None, up_to: int | None = None) -> list[RunRecord]:
        """Runs (of ``kind``; the ``last`` N; with id <= ``up_to``), oldest first."""
        query = select(RunRow).order_by(RunRow.id.desc())
        if kind is not None:
            query = query.where(RunRow.kind == kind)
        if up_to is not None:
            query = query.where(RunRow.id <= up_to)
        if last is not None:
            query = query.limit(last)
        with Session(self.engine) as session:
            return self._run_records(reversed(list(session.scalars(query))))

    def run(self, run_id: int) -> RunRecord:
        with Session(self.engine) as session:
            return self._run_records([self._get_run(session, run_id)])[0]

    def last_passing_run(self, kind: str = "nightly", before: int | None = None) -> RunRecord | None:
        """The most recent run of ``kind`` whose status is ``passed`` (with id < ``before``)."""
        query = (select(RunRow).where(RunRow.kind == kind, RunRow.status == RunStatus.PASSED.value)
                 .order_by(RunRow.id.desc()).limit(1))
        if before is not None:
            query = query.where(RunRow.id < before)
        with Session(self.engine) as session:
            run = session.scalars(query).first()
            return _run_record(run, run.status) if run is not None else None

    def update_run_details(self, run_id: int, **details: Any) -> None:
        """Merge ``details`` into the run's free-form details."""
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            run.details = {**(run.details or {}), **details}

    def _run_records(self, rows: Iterable[RunRow]) -> list[RunRecord]:
        """Records of ``rows``; a running run whose process is gone reads (and is stored) as aborted."""
        records: list[RunRecord] = []
        aborted: list[int] = []
        for row in rows:
            status = row.status
            if status == RunStatus.RUNNING and process_gone(row.host, row.pid, row.process_start):
                status = RunStatus.ABORTED.value
                aborted.append(row.id)
            records.append(_run_record(row, status))
        if aborted:
            self._store_aborted(aborted)
        return records

    def _store_aborted(self, run_ids: list[int]) -> None:
        """Say so in the database, for readers on other hosts; a read-only database keeps it unsaid."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(RunRow).where(RunRow.id.in_(run_ids), RunRow.status == RunStatus.RUNNING.value)
                             .values(status=RunStatus.ABORTED.value))
        except SQLAlchemyError:
            pass

    # ----------------------------------------------------------------- baseline

    def pin_baseline(self, run_id: int) -> RunRecord:
        """Make ``run_id`` the baseline of every later nightly until :meth:`unpin_baseline`."""
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            setting = session.get(SettingRow, _PIN_KEY)
            if setting is None:
                session.add(SettingRow(key=_PIN_KEY, value=str(run_id)))
            else:
                setting.value = str(run_id)
            return _run_record(run, run.status)

    def unpin_baseline(self) -> int | None:
        """Forget the pinned baseline; return the run id that was pinned (or None)."""
        with Session(self.engine) as session, session.begin():
            setting = session.get(SettingRow, _PIN_KEY)
            if setting is None:
                return None
            session.delete(setting)
            return int(setting.value)

    def pinned_baseline(self) -> int | None:
        with Session(self.engine) as session:
            setting = session.get(SettingRow, _PIN_KEY)
            return int(setting.value) if setting is not None else None

    # ----------------------------------------------------------------- findings

    def set_comparison(self, run_id: int, baseline_id: int | None, findings: list[Finding]) -> None:
        """Store what comparing ``run_id`` with ``baseline_id`` found (replacing an earlier comparison)."""
        for finding in findings:
            if finding.severity not in SEVERITIES:
                raise ResultsError(f"unknown finding severity {finding.severity!r}; "
                                   f"expected one of {', '.join(SEVERITIES)}")
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            session.execute(delete(FindingRow).where(FindingRow.run_id == run_id))
            for finding in findings:
                session.add(FindingRow(run_id=run_id, baseline_id=baseline_id,
                                       **{name: getattr(finding, name) for name in _FINDING_FIELDS}))
            run.baseline_id = baseline_id
            run.regressions = sum(f.severity == "regression" for f in findings)

    def findings_for_run(self, run_id: int) -> list[Finding]:
        """The findings stored for ``run_id`` by :meth:`set_comparison`, in the order given."""
        with Session(self.engine) as session:
            self._get_run(session, run_id)
            rows = session.scalars(select(FindingRow).where(FindingRow.run_id == run_id).order_by(FindingRow.id))
            return [Finding(**{name: getattr(row, name) for name in _FINDING_FIELDS}) for row in rows]

    # ----------------------------------------------------------------- results

    def add_result(self, run_id: int, record: ResultRecord) -> int:
        """Store ``record`` under ``run_id`` and commit at once; return its id."""
        if record.status not in RESULT_STATUSES:
            raise ResultsError(f"unknown result status {record.status!r}; expected one of {', '.join(Status)}")
        if record.unit is not None and record.unit not in UNITS:
            raise ResultsError(f"unknown count unit {record.unit!r}; expected one of {', '.join(Unit)}")
        values = {name: getattr(record, name) for name in _RESULT_FIELDS if name not in ("id", "run_id", "created_at")}
        values["status"] = Status(record.status).value  # the plain string, whether given a member or not
        if record.unit is not None:
            values["unit"] = Unit(record.unit).value
        if values["window_counts"] is not None:
            values["window_counts"] = [float(c) for c in values["window_counts"]]
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            if values["farm_version"] is None:
                values["farm_version"] = run.farm_version
            row = ResultRow(run_id=run_id, created_at=record.created_at or _now(), **values)
            session.add(row)
            session.flush()
            return row.id

    def results_for_run(self, run_id: int) -> list[ResultRecord]:
        """The results of ``run_id`` in the order they were added."""
        with Session(self.engine) as session:
            self._get_run(session, run_id)
            rows = session.scalars(select(ResultRow).where(ResultRow.run_id == run_id).order_by(ResultRow.id))
            return [_result_record(row) for row in rows]

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the idle connections of the (shared) engine; it opens new ones if used again."""
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _get_run(session: Session, run_id: int) -> RunRow:
        run = session.get(RunRow, run_id)
        if run is None:
            raise ResultsError(f"no run with id {run_id} in the results store")
        return run


def _run_record(run: RunRow, status: str) -> RunRecord:
    return RunRecord(
        id=run.id,
        kind=run.kind,
        status=status,
        started_at=_utc(run.started_at),
        finished_at=_utc(run.finished_at) if run.finished_at is not None else None,
        git_commit=run.git_commit,
        farm_version=run.farm_version,
        baseline_id=run.baseline_id,
        regressions=run.regressions,
        details=run.details,
    )


def _result_record(row: ResultRow) -> ResultRecord:
    values = {name: getattr(row, name) for name in _RESULT_FIELDS}
    values["created_at"] = _utc(values["created_at"])
    return ResultRecord(**values)
