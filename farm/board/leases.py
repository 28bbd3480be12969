"""Device leases and quarantine: one run uses a device at a time; a dead board is set aside.

A lease is a row per device in the results database (any SQLAlchemy URL, so
controllers sharing a PostgreSQL database share their leases too): its owner,
when it was taken and when it expires. The holder renews it (a heartbeat thread
every ttl/3); a run that is killed stops renewing, and its lease expires by
itself after the time-to-live -- at once when the holder was a process on this
machine that no longer exists. Taking a lease is one conditional UPDATE, so two
processes can never both get it.

Every lease taken is also logged (``lease_log``: device, owner, acquired,
released, how it ended) -- that is how a test shows that two nightlies never
shared a device. A holder on this machine whose process is gone is seen at once
(by the next run that wants the device, and by ``farm devices``): its lease is
ended and logged as ``expired``, and the device is shown free.

Every board is used under its lease: :func:`farm.board.registry.open_board` takes it
(:func:`hold`, with a :class:`LeasePolicy`: which database, how long to wait) before
the board is brought up and gives it back after, unless this process holds it
already (``farm run`` per device, the pytest ``device`` fixture for its tests).

A board that fails to identify after retries is *quarantined*: its row says
why and until when, nobody gets a lease on it meanwhile, and runs report it as
an infrastructure failure instead of trying it again. ``farm devices`` shows
each device's state; ``farm devices --clear-quarantine NAME`` ends a quarantine.
"""

from __future__ import annotations

import atexit
import datetime as dt
import getpass
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Float, Integer, String, Text, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from farm.board.infra import BoardUnavailable, InfraError
from farm.config.state import default_db_url, state_dir
from farm.store.engine import get_engine, normalize_url
from farm.store.migrations import create_tables
from farm.store.status import Status

DEFAULT_TTL = 60.0  # seconds a lease lives without a heartbeat
QUARANTINE_HOURS = 12.0


class _Base(DeclarativeBase):
    pass


class _Lease(_Base):
    __tablename__ = "device_leases"

    device: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(128))  # unique token of the holder
    owner_label: Mapped[str | None] = mapped_column(Text)  # who, for people: "nightly run 12 (pid 4242 on ci-1)"
    owner_host: Mapped[str | None] = mapped_column(String(256))
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[float | None] = mapped_column(Float)  # epoch seconds
    expires_at: Mapped[float | None] = mapped_column(Float)
    quarantined_at: Mapped[float | None] = mapped_column(Float)
    quarantined_until: Mapped[float | None] = mapped_column(Float)
    quarantine_reason: Mapped[str | None] = mapped_column(Text)


class _LeaseLog(_Base):
    __tablename__ = "lease_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(128), index=True)
    owner: Mapped[str] = mapped_column(String(128))
    owner_label: Mapped[str | None] = mapped_column(Text)
    acquired_at: Mapped[float] = mapped_column(Float)
    released_at: Mapped[float | None] = mapped_column(Float)
    ended: Mapped[str | None] = mapped_column(String(16))  # released | expired


class DeviceBusy(RuntimeError):
    """The device is leased by another run (and stayed so for as long as we waited)."""

    def __init__(self, device: str, holder: str, expires_at: float, waited: float) -> None:
        self.device, self.holder, self.expires_at = device, holder, expires_at
        waited_text = f" after waiting {waited:.0f} s" if waited > 0 else ""
        super().__init__(f"{device} is busy{waited_text}: leased by {holder} until {_clock(expires_at)}")


class DeviceQuarantined(InfraError):
    """The device is quarantined: an earlier run found that it does not identify."""

    def __init__(self, device: str, reason: str, until: float | None) -> None:
        self.device, self.reason, self.until = device, reason, until
        super().__init__(f"{device} is quarantined until {_clock(until)}: {reason} "
                         f"(farm devices --clear-quarantine {device} to try it again)")


@dataclass(frozen=True)
class DeviceState:
    device: str
    state: str  # free | leased | quarantined
    owner: str | None = None
    since: float | None = None
    until: float | None = None
    reason: str | None = None

    @property
    def text(self) -> str:
        if self.state == "leased":
            return f"leased by {self.owner} until {_clock(self.until)}"
        if self.state == "quarantined":
            return f"quarantined until {_clock(self.until)}: {self.reason}"
        return "free"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until"):
            data[key] = _iso(data[key])
        return data


def _clock(epoch: float | None) -> str:
    if epoch is None:
        return "cleared"
    return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_owner_label(purpose: str) -> str:
    return f"{purpose} (pid {os.getpid()} on {socket.gethostname()}, {getpass.getuser()})"


def database_key(url: str) -> str:
    """One string per database, however its URL is spelled (a SQLite file by its absolute path)."""
    parsed = normalize_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" \
            and not database.startswith("file:"):
        parsed = parsed.set(database=str(Path(database).resolve()))
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class LeasePolicy:
    """How a board is leased when it is opened (farm.board.registry.open_board)."""

    db_url: str  # the database that holds the leases (the results DB)
    wait: float = 900.0  # seconds to wait for a device another run holds; 0 = skip a busy device at once
    purpose: str = "farm"  # shown as the holder ("farm infer", "nightly", ...)

    @classmethod
    def default(cls, purpose: str = "farm") -> LeasePolicy:
        """The state folder's results database (``$FARM_DB_URL`` if set), waiting 900 s."""
        return cls(default_db_url(state_dir()), purpose=purpose)

    def manager(self) -> LeaseManager:
        """This process's lease manager for the policy's database (one per database)."""
        return shared_manager(self.db_url)


#: every live LeaseManager of this process (what "this process holds the lease" looks at)
_managers: weakref.WeakSet[LeaseManager] = weakref.WeakSet()
_shared: dict[str, LeaseManager] = {}
_shared_lock = threading.Lock()
_shared_pid = os.getpid()


def shared_manager(url: str) -> LeaseManager:
    """The process's LeaseManager for the database at ``url``: created on first use, reused
    after (one owner, one heartbeat thread, the engine shared with the results store),
    its leases given back when the process exits."""
    global _shared_pid
    key = database_key(url)
    with _shared_lock:
        if _shared_pid != os.getpid():  # a forked child is another holder: it needs its own owner token
            _shared.clear()
            _shared_pid = os.getpid()
        manager = _shared.get(key)
        if manager is None:
            manager = _shared[key] = LeaseManager(url)
            atexit.register(manager.close)
        return manager


def held_in_process(url: str, device: str) -> bool:
    """True when a LeaseManager of this process holds ``device``'s lease in the database at ``url``."""
    key = database_key(url)
    return any(m.database_key == key and m.holds(device) for m in list(_managers))


@contextmanager
def hold(device: str, policy: LeasePolicy) -> Iterator[None]:
    """Hold ``device``'s lease for the block, taken through the policy's shared manager
    (waiting up to ``policy.wait``; DeviceBusy or DeviceQuarantined when it cannot be had) --
    or nothing at all when this process holds it already, which then keeps it."""
    if held_in_process(policy.db_url, device):
        yield
        return
    manager = policy.manager()
    manager.acquire(device, wait=policy.wait, purpose=policy.purpose)
    try:
        yield
    finally:
        manager.release(device)


class LeaseManager:
    """Leases of one owner (a run) on the devices of a database.

    Several can live in one process (farm run's, the pytest plugin's, the shared one of
    :func:`shared_manager`); each is its own owner to the others.
    """

    def __init__(self, url: str, *, purpose: str = "farm", ttl: float = DEFAULT_TTL,
                 heartbeat: float | None = None) -> None:
        self.url = url
        self.database_key = database_key(url)
        # the results store's engine (psycopg 3 for postgresql://, SQLite waits for locks)
        self.engine: Engine = get_engine(url)
        create_tables(self.engine, _Base.metadata)  # safe while other workers open a new database
        self.ttl = ttl
        self.heartbeat_seconds = heartbeat if heartbeat is not None else max(ttl / 3.0, 0.05)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.owner_label = default_owner_label(purpose)
        self.held: dict[str, int] = {}  # device -> lease_log id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: set[str] = set()  # leases taken away while we held them (expired: no heartbeat)
        _managers.add(self)

    def holds(self, device: str) -> bool:
        """True while this manager holds ``device``'s lease (and has not lost it)."""
        with self._lock:
            return device in self.held and device not in self.lost

    # ----------------------------------------------------------------- taking and giving back
    def try_acquire(self, device: str, purpose: str | None = None) -> bool:
        """Take the lease on ``device`` if nobody else holds it; ``purpose`` names this
        holding for people (default: the manager's)."""
        now = time.time()
        label = default_owner_label(purpose) if purpose else self.owner_label
        with self.engine.begin() as conn:
            try:
                conn.execute(insert(_Lease).values(device=device))
            except IntegrityError:
                pass
        with self.engine.begin() as conn:
            self._end_dead_local_holders(conn, [device], now)
            row = conn.execute(select(_Lease).where(_Lease.device == device)).one()
            if row.quarantined_until is not None and row.quarantined_until > now:
                raise DeviceQuarantined(device, row.quarantine_reason or "quarantined", row.quarantined_until)
            taken = conn.execute(
                update(_Lease)
                .where(_Lease.device == device)
                .where((_Lease.owner.is_(None)) | (_Lease.expires_at < now) | (_Lease.owner == self.owner))
                .values(owner=self.owner, owner_label=label, owner_host=socket.gethostname(),
                        owner_pid=os.getpid(), acquired_at=now, expires_at=now + self.ttl)
            ).rowcount
            if taken != 1:
                return False
            # the lease is ours from now on: a holder that released it did so before this
            # transaction could take it, so the time stamped now never precedes its release
            now = time.time()
            conn.execute(update(_Lease).where(_Lease.device == device).where(_Lease.owner == self.owner)
                         .values(acquired_at=now, expires_at=now + self.ttl))
            if row.owner and row.owner != self.owner:  # we took over an expired lease: close its log entry
                conn.execute(update(_LeaseLog).where(_LeaseLog.device == device)
                             .where(_LeaseLog.owner == row.owner).where(_LeaseLog.released_at.is_(None))
                             .values(released_at=row.expires_at, ended="expired"))
            if device not in self.held:
                log_id = conn.execute(insert(_LeaseLog).values(
                    device=device, owner=self.owner, owner_label=label, acquired_at=now)
                ).inserted_primary_key[0]
                with self._lock:
                    self.held[device] = int(log_id)
                    self.lost.discard(device)
        self._start_heartbeat()
        return True

    def _end_dead_local_holders(self, conn: Any, devices: list[str], now: float) -> None:
        """A holder that was a process on this machine and is gone: its lease ends now,
        logged as expired (the device is free at once, not after the TTL)."""
        rows = conn.execute(select(_Lease).where(_Lease.device.in_(devices)).where(_Lease.owner.is_not(None))
                            .where(_Lease.owner != self.owner).where(_Lease.expires_at > now)
                            .where(_Lease.owner_host == socket.gethostname())).all()
        for row in rows:
            if not row.owner_pid or _pid_alive(row.owner_pid):
                continue
            ended = conn.execute(update(_Lease).where(_Lease.device == row.device).where(_Lease.owner == row.owner)
                                 .values(owner=None, owner_label=None, owner_host=None, owner_pid=None,
                                         acquired_at=None, expires_at=None)).rowcount
            if ended == 1:
                conn.execute(update(_LeaseLog).where(_LeaseLog.device == row.device)
                             .where(_LeaseLog.owner == row.owner).where(_LeaseLog.released_at.is_(None))
                             .values(released_at=now, ended="expired"))

    def acquire(self, device: str, wait: float = 0.0, poll: float = 0.25,
                on_wait: Any = None, purpose: str | None = None) -> None:
        """Take the lease on ``device``, waiting up to ``wait`` seconds while another run
        holds it; raise DeviceBusy (then) or DeviceQuarantined."""
        started = time.monotonic()
        told = False
        while not self.try_acquire(device, purpose):
            waited = time.monotonic() - started
            if waited >= wait:
                holder = self.state(device)
                raise DeviceBusy(device, holder.owner or "another run", holder.until or time.time(),
                                 waited if wait > 0 else 0.0)
            if on_wait is not None and not told:
                on_wait(f"{device} is busy ({self.state(device).text}); waiting up to {wait:.0f} s")
                told = True
            time.sleep(min(poll, max(wait - waited, 0.01)))

    def release(self, device: str) -> None:
        now = time.time()
        with self._lock:
            log_id = self.held.pop(device, None)
            self.lost.discard(device)
        if log_id is None:
            return
        with self.engine.begin() as conn:
            conn.execute(update(_Lease).where(_Lease.device == device).where(_Lease.owner == self.owner)
                         .values(owner=None, owner_label=None, owner_host=None, owner_pid=None,
                                 acquired_at=None, expires_at=None))
            conn.execute(update(_LeaseLog).where(_LeaseLog.id == log_id).where(_LeaseLog.released_at.is_(None))
                         .values(released_at=now, ended="released"))

    def release_all(self) -> None:
        for device in list(self.held):
            self.release(device)

    @contextmanager
    def leased(self, device: str, wait: float = 0.0, on_wait: Any = None) -> Iterator[None]:
        """Hold ``device``'s lease for the block (unless this manager holds it already)."""
        if device in self.held:
            yield
            return
        self.acquire(device, wait=wait, on_wait=on_wait)
        try:
            yield
        finally:
            self.release(device)

    def close(self) -> None:
        """Stop the heartbeat and give back every lease (the engine is the process's: it stays)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release_all()

    # ----------------------------------------------------------------- heartbeat
    def _start_heartbeat(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="farm-lease-heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.renew()
            except SQLAlchemyError:
                continue  # the database is away for a moment: try again at the next beat

    def renew(self) -> None:
        """Push the expiry of every held lease ttl seconds ahead (the heartbeat)."""
        now = time.time()
        with self._lock:
            devices = list(self.held)
        for device in devices:
            with self.engine.begin() as conn:
                renewed = conn.execute(update(_Lease).where(_Lease.device == device)
                                       .where(_Lease.owner == self.owner)
                                       .values(expires_at=now + self.ttl)).rowcount
            if renewed != 1:
                with self._lock:
                    self.lost.add(device)

    # ----------------------------------------------------------------- quarantine and state
    def quarantine(self, device: str, reason: str, hours: float = QUARANTINE_HOURS) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            try:
                conn.execute(insert(_Lease).values(device=device))
            except IntegrityError:
                pass
        with self.engine.begin() as conn:
            conn.execute(update(_Lease).where(_Lease.device == device)
                         .values(quarantined_at=now, quarantined_until=now + hours * 3600,
                                 quarantine_reason=reason))

    def clear_quarantine(self, device: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(_Lease).where(_Lease.device == device)
                                .where(_Lease.quarantined_until.is_not(None))
                                .values(quarantined_at=None, quarantined_until=None,
                                        quarantine_reason=None)).rowcount == 1

    def quarantined(self, device: str) -> DeviceQuarantined | None:
        state = self.state(device)
        if state.state == "quarantined":
            return DeviceQuarantined(device, state.reason or "", state.until)
        return None

    def state(self, device: str) -> DeviceState:
        return self.states([device])[0]

    def states(self, devices: Iterable[str]) -> list[DeviceState]:
        """Each device's state; a lease whose holder process (on this machine) is gone is
        ended on the way, so the device shows free."""
        names = list(devices)
        now = time.time()
        with self.engine.begin() as conn:
            self._end_dead_local_holders(conn, names, now)
            rows = {r.device: r for r in conn.execute(select(_Lease).where(_Lease.device.in_(names)))}
        out = []
        for name in names:
            row = rows.get(name)
            if row is not None and row.quarantined_until is not None and row.quarantined_until > now:
                out.append(DeviceState(name, "quarantined", since=row.quarantined_at, until=row.quarantined_until,
                                       reason=row.quarantine_reason))
            elif row is not None and row.owner and row.expires_at is not None and row.expires_at > now:
                out.append(DeviceState(name, "leased", owner=row.owner_label or row.owner,
                                       since=row.acquired_at, until=row.expires_at))
            else:
                out.append(DeviceState(name, "free"))
        return out

    def log(self, device: str | None = None) -> list[dict[str, Any]]:
        """The lease history (oldest first): device, owner, owner_label, acquired_at, released_at, ended."""
        query = select(_LeaseLog).order_by(_LeaseLog.id)
        if device is not None:
            query = query.where(_LeaseLog.device == device)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def quarantine_if_needed(manager: LeaseManager, device: str, record: Any) -> bool:
    """Quarantine ``device`` when ``record`` is an infrastructure failure of the board itself
    (it did not identify); True when it did."""
    details = getattr(record, "details", None) or {}
    if getattr(record, "status", None) == Status.INFRA_ERROR and details.get("quarantine"):
        manager.quarantine(device, record.message or "did not identify")
        return True
    return False


__all__ = ["BoardUnavailable", "DeviceBusy", "DeviceQuarantined", "DeviceState", "LeaseManager", "LeasePolicy",
           "held_in_process", "hold", "quarantine_if_needed", "shared_manager"]
