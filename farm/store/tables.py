"""The store's tables (SQLAlchemy ORM): runs, results, findings, settings.

One row class per table; :mod:`farm.store.results` turns rows into the plain records
of :mod:`farm.store.records`. Every column added after the first release is nullable,
so :mod:`farm.store.migrations` can add it to an older database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, JSON, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RunRow(Base):
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
    # the process that runs it (farm.store.liveness): a run whose process is gone reads as aborted
    host: Mapped[str | None] = mapped_column(String(256))
    pid: Mapped[int | None] = mapped_column(Integer)
    process_start: Mapped[str | None] = mapped_column(String(64))


class ResultRow(Base):
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
    stack_used_bytes: Mapped[int | None] = mapped_column(BigInteger)
    stack_bound_bytes: Mapped[int | None] = mapped_column(BigInteger)
    stack_reserved_bytes: Mapped[int | None] = mapped_column(BigInteger)
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


class FindingRow(Base):
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


class SettingRow(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
