"""The results store: one row per (run, device, model, variant), with provenance.

SQLAlchemy 2.0 over any database URL: an SQLite file by default (the state
folder's ``results.db``, see :mod:`farm.config.state`), or PostgreSQL
(``postgresql://user@host:port/db``; the driver is psycopg 3). Tables are created
on first use, and columns added since a database was created are added to it
(``ALTER TABLE ... ADD COLUMN``), so an older ``results.db`` keeps working.
Every :meth:`ResultsStore.add_result` commits on its own, so the results measured
before a crash, a hang or a Ctrl-C are never lost; such a run simply keeps the
status ``running`` and no ``finished_at``.

Besides runs and results the store keeps what the nightly judged: the baseline a
run was compared with and its findings (:class:`Finding`: a regression, a change,
an improvement ... per device, model, variant and metric), and the pinned
baseline (``farm baseline pin RUN``).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    JSON,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from farm import __version__

#: run: `farm run`; nightly: `farm nightly`; pytest: a HIL session started by plain pytest.
RUN_KINDS = ("run", "nightly", "pytest")
#: running until finish_run; a run that crashed keeps "running" and no finished_at.
#: passed / failed: the run's verdict; finished: completed without a verdict;
#: error: the run itself broke; interrupted: stopped by the user.
RUN_STATUSES = ("running", "passed", "failed", "finished", "error", "interrupted")
RESULT_STATUSES = ("ok", "failed", "faulted", "hung", "does-not-fit", "not-portable", "error", "infra-error")
UNITS = ("cycles", "instructions")
#: how a finding judges a change against the baseline (see farm.judge.regression)
SEVERITIES = ("regression", "changed", "improved", "noise", "new", "missing")
_PIN_KEY = "baseline.pin"


class ResultsError(ValueError):
    """A record or run that the store refuses: unknown run, bad status or kind."""


# --------------------------------------------------------------------------- plain records


@dataclasses.dataclass(kw_only=True)
class ResultRecord:
    """One measured (or failed) combination of device, model and variant."""

    device: str
    model: str
    variant: str
    status: str  # one of RESULT_STATUSES
    message: str | None = None  # why it is not ok (fault decoded, does not fit by N bytes, ...)
    unit: str | None = None  # "cycles" | "instructions"
    count_median: float | None = None
    count_min: int | None = None
    count_max: int | None = None
    windows: int | None = None
    latency_us: float | None = None
    latency_is_estimate: bool | None = None  # True when derived from an instruction count
    energy_uj: float | None = None
    energy_source: str | None = None
    metric: str | None = None  # "accuracy" | "mae"
    accuracy_device: float | None = None
    accuracy_host: float | None = None
    bit_exact_fraction: float | None = None
    max_abs_error: float | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    model_size_bytes: int | None = None
    model_sha256: str | None = None
    elf_sha256: str | None = None
    compiler: str | None = None
    compiler_flags: str | None = None
    host: str | None = None  # bench host; None for local and emulated boards
    farm_version: str | None = None  # filled from the run when left None
    #: per-inference count of every kept timed window (the median and the noise band come from these)
    window_counts: list[float] | None = None
    #: free-form facts about how the result was made, e.g. firmware_cached, build_seconds, float_kind
    details: dict[str, Any] | None = None
    created_at: datetime | None = None  # set by the store
    id: int | None = None  # set by the store
    run_id: int | None = None  # set by the store

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclasses.dataclass(kw_only=True)
class RunRecord:
    id: int
    kind: str  # "run" | "nightly"
    status: str  # one of RUN_STATUSES
    started_at: datetime
    finished_at: datetime | None
    git_commit: str | None
    farm_version: str | None
    baseline_id: int | None = None  # the run this one was compared with (nightly)
    regressions: int | None = None  # regressions found against it; None when not compared
    details: dict[str, Any] | None = None  # e.g. HIL test counts, how the baseline was chosen

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclasses.dataclass(kw_only=True)
class Finding:
    """What changed for one metric of one (device, model, variant) between a baseline and a run.

    ``severity``: ``regression`` (fails the night), ``changed`` (reported, within the
    thresholds), ``improved``, ``noise`` (a real board's change inside its noise band),
    ``new`` (no such result in the baseline), ``missing`` (in the baseline, not in the run).
    ``before``/``after`` are numbers, or statuses for the metric ``status``.
    """

    device: str
    model: str
    variant: str
    metric: str  # count | energy_uj | accuracy | bit_exact | max_abs_error | flash_bytes | ram_bytes | ...
    severity: str  # one of SEVERITIES
    before: float | str | None = None
    after: float | str | None = None
    unit: str | None = None
    change_pct: float | None = None
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.device, self.model, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _to_dict(record: Any) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dataclasses.asdict(record).items()}


# --------------------------------------------------------------------------- tables


class _Base(DeclarativeBase):
    pass


class _Run(_Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    farm_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    baseline_id: Mapped[int | None] = mapped_column(Integer)
    regressions: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class _Result(_Base):
    __tablename__ = "results"
    __table_args__ = (Index("ix_results_combo", "device", "model", "variant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    device: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(16))
    count_median: Mapped[float | None] = mapped_column(Float)
    count_min: Mapped[int | None] = mapped_column(BigInteger)
    count_max: Mapped[int | None] = mapped_column(BigInteger)
    windows: Mapped[int | None] = mapped_column(Integer)
    latency_us: Mapped[float | None] = mapped_column(Float)
    latency_is_estimate: Mapped[bool | None] = mapped_column(Boolean)
    energy_uj: Mapped[float | None] = mapped_column(Float)
    energy_source: Mapped[str | None] = mapped_column(Text)
    metric: Mapped[str | None] = mapped_column(String(32))
    accuracy_device: Mapped[float | None] = mapped_column(Float)
    accuracy_host: Mapped[float | None] = mapped_column(Float)
    bit_exact_fraction: Mapped[float | None] = mapped_column(Float)
    max_abs_error: Mapped[float | None] = mapped_column(Float)
    flash_bytes: Mapped[int | None] = mapped_column(BigInteger)
    ram_bytes: Mapped[int | None] = mapped_column(BigInteger)
    model_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    elf_sha256: Mapped[str | None] = mapped_column(String(64))
    compiler: Mapped[str | None] = mapped_column(Text)
    compiler_flags: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(128))
    farm_version: Mapped[str | None] = mapped_column(String(64))
    window_counts: Mapped[list[float] | None] = mapped_column(JSON(none_as_null=True))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Finding(_Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    baseline_id: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    # None for what was not measured on one side (a combination new to, or gone from, the baseline)
    before: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32))
    change_pct: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)


class _Setting(_Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


_RESULT_FIELDS = [f.name for f in dataclasses.fields(ResultRecord)]
_FINDING_FIELDS = [f.name for f in dataclasses.fields(Finding)]


# --------------------------------------------------------------------------- the store


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes, PostgreSQL its session's zone; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _migrate_schema(engine: Engine) -> None:
    """Bring a database made by an older tinyfarm to today's tables, in one pass:
    add the columns it lacks (all of them nullable), and drop NOT NULL where the
    schema allows NULL (tinyfarm <= 0.1 created findings.before/after NOT NULL, so a
    finding about a combination new to the baseline could not be stored)."""
    inspector = inspect(engine)
    for table in _Base.metadata.sorted_tables:
        have = {c["name"]: c for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        if missing:
            with engine.begin() as conn:
                for column in missing:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
        stale = [c.name for c in table.columns
                 if c.nullable and not c.primary_key and c.name in have and not have[c.name]["nullable"]]
        if stale:
            _drop_not_null(engine, inspector, table, stale)


def _drop_not_null(engine: Engine, inspector: Any, table: Any, columns: list[str]) -> None:
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            for name in columns:
                conn.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{name}" DROP NOT NULL'))
        return
    # SQLite cannot alter a column: rebuild the table and copy its rows
    if any(fk.column.table is table for other in _Base.metadata.sorted_tables for fk in other.foreign_keys):
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


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def normalize_url(url: str) -> URL:
    """The SQLAlchemy URL for ``url``; plain ``postgresql://`` (or ``postgres://``) uses psycopg 3."""
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


class ResultsStore:
    """Runs and their results in the database at ``url`` (any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        parsed = normalize_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        try:
            self.engine: Engine = create_engine(parsed, pool_pre_ping=True)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ResultsError(f"no database driver for {redact(parsed)}: {exc}") from None
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)
        try:
            _Base.metadata.create_all(self.engine)
            _migrate_schema(self.engine)
        except SQLAlchemyError as exc:  # cannot connect, no such database, ...: say which, no traceback
            self.engine.dispose()
            reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
            raise ResultsError(f"cannot open the results database {redact(parsed)}: {reason}") from None

    # ----------------------------------------------------------------- runs

    def start_run(self, kind: str, git_commit: str | None = None, farm_version: str | None = None) -> int:
        if kind not in RUN_KINDS:
            raise ResultsError(f"unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
        run = _Run(
            kind=kind,
            git_commit=git_commit,
            farm_version=farm_version or __version__,
            status="running",
            started_at=_now(),
        )
        with Session(self.engine) as session, session.begin():
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, status: str) -> None:
        if status not in RUN_STATUSES or status == "running":
            expected = ", ".join(s for s in RUN_STATUSES if s != "running")
            raise ResultsError(f"unknown final run status {status!r}; expected one of {expected}")
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            run.status = status
            run.finished_at = _now()

    def latest_run(self, kind: str | None = None) -> RunRecord | None:
        """The most recently started run (of ``kind``, when given), or None."""
        query = select(_Run).order_by(_Run.started_at.desc(), _Run.id.desc()).limit(1)
        if kind is not None:
            if kind not in RUN_KINDS:
                raise ResultsError(f"unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
            query = query.where(_Run.kind == kind)
        with Session(self.engine) as session:
            run = session.scalars(query).first()
            return _run_record(run) if run is not None else None

    def runs(self, kind: str | None = None, *, last: int | None = None, up_to: int | None = None) -> list[RunRecord]:
        """Runs (of ``kind``; the ``last`` N; with id <= ``up_to``), oldest first."""
        query = select(_Run).order_by(_Run.id.desc())
        if kind is not None:
            query = query.where(_Run.kind == kind)
        if up_to is not None:
            query = query.where(_Run.id <= up_to)
        if last is not None:
            query = query.limit(last)
        with Session(self.engine) as session:
            return [_run_record(r) for r in reversed(list(session.scalars(query)))]

    def run(self, run_id: int) -> RunRecord:
        with Session(self.engine) as session:
            return _run_record(self._get_run(session, run_id))

    def last_passing_run(self, kind: str = "nightly", before: int | None = None) -> RunRecord | None:
        """The most recent run of ``kind`` whose status is ``passed`` (with id < ``before``)."""
        query = select(_Run).where(_Run.kind == kind, _Run.status == "passed").order_by(_Run.id.desc()).limit(1)
        if before is not None:
            query = query.where(_Run.id < before)
        with Session(self.engine) as session:
            run = session.scalars(query).first()
            return _run_record(run) if run is not None else None

    def update_run_details(self, run_id: int, **details: Any) -> None:
        """Merge ``details`` into the run's free-form details."""
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            run.details = {**(run.details or {}), **details}

    # ----------------------------------------------------------------- baseline

    def pin_baseline(self, run_id: int) -> RunRecord:
        """Make ``run_id`` the baseline of every later nightly until :meth:`unpin_baseline`."""
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            setting = session.get(_Setting, _PIN_KEY)
            if setting is None:
                session.add(_Setting(key=_PIN_KEY, value=str(run_id)))
            else:
                setting.value = str(run_id)
            return _run_record(run)

    def unpin_baseline(self) -> int | None:
        """Forget the pinned baseline; return the run id that was pinned (or None)."""
        with Session(self.engine) as session, session.begin():
            setting = session.get(_Setting, _PIN_KEY)
            if setting is None:
                return None
            session.delete(setting)
            return int(setting.value)

    def pinned_baseline(self) -> int | None:
        with Session(self.engine) as session:
            setting = session.get(_Setting, _PIN_KEY)
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
            session.execute(delete(_Finding).where(_Finding.run_id == run_id))
            for finding in findings:
                session.add(_Finding(run_id=run_id, baseline_id=baseline_id,
                                     **{name: getattr(finding, name) for name in _FINDING_FIELDS}))
            run.baseline_id = baseline_id
            run.regressions = sum(f.severity == "regression" for f in findings)

    def findings_for_run(self, run_id: int) -> list[Finding]:
        """The findings stored for ``run_id`` by :meth:`set_comparison`, in the order given."""
        with Session(self.engine) as session:
            self._get_run(session, run_id)
            rows = session.scalars(select(_Finding).where(_Finding.run_id == run_id).order_by(_Finding.id))
            return [Finding(**{name: getattr(row, name) for name in _FINDING_FIELDS}) for row in rows]

    # ----------------------------------------------------------------- results

    def add_result(self, run_id: int, record: ResultRecord) -> int:
        """Store ``record`` under ``run_id`` and commit at once; return its id."""
        if record.status not in RESULT_STATUSES:
            raise ResultsError(f"unknown result status {record.status!r}; expected one of {', '.join(RESULT_STATUSES)}")
        if record.unit is not None and record.unit not in UNITS:
            raise ResultsError(f"unknown count unit {record.unit!r}; expected one of {', '.join(UNITS)}")
        values = {name: getattr(record, name) for name in _RESULT_FIELDS if name not in ("id", "run_id", "created_at")}
        if values["window_counts"] is not None:
            values["window_counts"] = [float(c) for c in values["window_counts"]]
        with Session(self.engine) as session, session.begin():
            run = self._get_run(session, run_id)
            if values["farm_version"] is None:
                values["farm_version"] = run.farm_version
            row = _Result(run_id=run_id, created_at=record.created_at or _now(), **values)
            session.add(row)
            session.flush()
            return row.id

    def results_for_run(self, run_id: int) -> list[ResultRecord]:
        """The results of ``run_id`` in the order they were added."""
        with Session(self.engine) as session:
            self._get_run(session, run_id)
            rows = session.scalars(select(_Result).where(_Result.run_id == run_id).order_by(_Result.id))
            return [_result_record(row) for row in rows]

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _get_run(session: Session, run_id: int) -> _Run:
        run = session.get(_Run, run_id)
        if run is None:
            raise ResultsError(f"no run with id {run_id} in the results store")
        return run


def _run_record(run: _Run) -> RunRecord:
    return RunRecord(
        id=run.id,
        kind=run.kind,
        status=run.status,
        started_at=_utc(run.started_at),
        finished_at=_utc(run.finished_at) if run.finished_at is not None else None,
        git_commit=run.git_commit,
        farm_version=run.farm_version,
        baseline_id=run.baseline_id,
        regressions=run.regressions,
        details=run.details,
    )


def _result_record(row: _Result) -> ResultRecord:
    values = {name: getattr(row, name) for name in _RESULT_FIELDS}
    values["created_at"] = _utc(values["created_at"])
    return ResultRecord(**values)
