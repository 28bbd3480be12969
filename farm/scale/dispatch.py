"""The controller's side of a night on the cluster: submit every board job, hand each result back.

:class:`Dispatcher` submits, per (device, model, variant), a host-only prepare job (no
resource) and the measurement (``board:<name>=1``, after its prepare job), and gives
back the finished :class:`farm.scale.jobs.JobOutcome` when the caller asks for it. The
controller stores the records; workers only measure.

Faults end a board's night, never the run:

- the worker running a board's job dies or is killed (or the worker serving the
  board leaves before the job ran): the job is ``infra-error`` naming the worker, and
  the board is not used again tonight (its other jobs are ``infra-error`` too, with
  the same sentence); every other board goes on;
- a job that has not finished ``job_timeout`` seconds after it started on its worker
  is ``infra-error`` ("no result within N s"), and its board is set aside likewise;
- a board that no worker advertises waits ``worker_wait`` seconds from the start of
  the night for a worker to join (a worker that joins late gets its boards' jobs),
  then its jobs are ``infra-error``.

A board has at most one board job of a dispatcher on the cluster at a time: the next one is
submitted when the one before it is done (its prepare job long before). Dask's worker runs the
resource-restricted task of highest priority first, or none: a job queued behind another job
of a busy board on the same worker held back a free board sharing that worker (measured: the
whole zoo's qemu-m3 sat 87 s without a job while avr-mega2560, on its worker, had jobs
queued), and queued board jobs counted as the worker's work, so the scheduler held the
host-only prepare jobs back too.

A job that raises on its worker (a bug, a result that does not travel) is ``infra-error``
naming the exception; its board goes on. Every job's start and end on its worker (board jobs,
and the host-only prepare jobs this dispatcher submitted) is kept in
:attr:`Dispatcher.job_log` (from the Dask event topic farm.scale.jobs.JOB_TOPIC, shared with
the other dispatchers of the client through farm.scale.events).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import farm
from farm.scale.events import router_of
from farm.scale.jobs import JOB_TOPIC, PREPARE, PROGRESS_TOPIC, JobOutcome, MeasureSpec, measure_job, prepare_job
from farm.scale.resources import board_resource, boards_of_worker
from farm.store.records import ResultRecord
from farm.store.status import Status

Key = tuple[str, str, str]

DEFAULT_JOB_TIMEOUT = 1800.0  # seconds a board job may run on its worker
DEFAULT_WORKER_WAIT = 120.0  # seconds a board no worker advertises waits for one to join
POLL = 0.5


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def lost_record(spec: MeasureSpec, message: str, worker: str | None, infra: str = "WorkerLost") -> ResultRecord:
    """The record of a measurement the cluster lost: ``infra-error`` with the sentence and worker
    (``infra``: what kind of loss, in the details)."""
    device = spec.device
    return ResultRecord(device=device.name, model=spec.model, variant=spec.variant, status=Status.INFRA_ERROR,
                        message=message, unit=device.unit, farm_version=farm.__version__,
                        created_at=dt.datetime.now(dt.timezone.utc), host=device.host,
                        details={"infra": infra, "worker": worker, "kernels": spec.kernels})


#: a board job: (spec, what its prepare job said, its Dask key) -> JobOutcome (farm.scale.jobs)
BoardJob = Callable[[MeasureSpec, "dict[str, Any] | None", str], JobOutcome]
#: a host-only prepare job: (device, model, variant, kernels, project) -> what it made (farm.scale.jobs)
HostJob = Callable[..., "dict[str, Any]"]


def board_interleaved(items: "list[Any]", board: Callable[[Any], str]) -> "list[Any]":
    """``items`` dealt round-robin over their boards (each board's own order kept): the order
    to submit a night's jobs in. Dask runs what was submitted first first, so every board gets
    its first prepare job and its first board job at the start of the night, instead of the
    last board in test order waiting for every other board's host-only work."""
    queues: dict[str, list[Any]] = {}
    for item in items:
        queues.setdefault(board(item), []).append(item)
    dealt: list[Any] = []
    while queues:
        for name in list(queues):
            dealt.append(queues[name].pop(0))
            if not queues[name]:
                del queues[name]
    return dealt


def job_spans(log: "list[dict[str, Any]]") -> "list[dict[str, Any]]":
    """The start / end events of a job log (Dispatcher.job_log) as one span per job, in start
    order: key, kind, board, worker, started, ended (None: no end seen: it was lost), error."""
    spans: dict[str, dict[str, Any]] = {}
    for event in log:
        key = str(event.get("key", ""))
        span = spans.setdefault(key, {"key": key, "kind": event.get("kind"), "board": event.get("board"),
                                      "worker": event.get("worker"), "started": None, "ended": None})
        if event.get("event") == "start":
            span.update(started=event.get("at"), worker=event.get("worker"))
        else:
            span["ended"] = event.get("at")
            if event.get("error"):
                span["error"] = event["error"]
    return sorted(spans.values(), key=lambda s: (s["started"] is None, s["started"] or 0.0))


def _static_of(prepared: Any) -> Any:
    """The StaticCheck a prepare job made (None when it failed)."""
    return prepared.get("static") if isinstance(prepared, dict) else None


def _suspicious_tasks(names: list[str], dask_scheduler: Any = None) -> list[str]:
    """Run on the scheduler: which of ``names`` were processing on a worker that died."""
    tasks = dask_scheduler.tasks if dask_scheduler is not None else {}
    return [n for n in names if n in tasks and getattr(tasks[n], "suspicious", 0)]


class Dispatcher:
    """Board jobs of one run on a cluster (a distributed.Client); see the module docstring.
    ``job`` is what runs on the board: the measurement (default), or farm.scale.jobs'
    ``portability_job`` / ``profile_job``. A lost job's record is an ``infra-error``
    ResultRecord whatever the job (``lost_record``). ``host_job`` is the host-only job before
    each board job (farm.scale.jobs' ``prepare_job``)."""

    def __init__(self, client: Any, *, job_timeout: float = DEFAULT_JOB_TIMEOUT,
                 worker_wait: float = DEFAULT_WORKER_WAIT, progress: Callable[[str], None] | None = None,
                 job: BoardJob = measure_job, prepared: "dict[Key, Any] | None" = None,
                 host_job: HostJob = prepare_job) -> None:
        self.client = client
        self.job = job
        self.host_job = host_job
        #: (board, model, variant) -> its host-only prepare job; dispatchers of one run share it
        self.prepared: dict[Key, Any] = prepared if prepared is not None else {}
        self.job_timeout = job_timeout
        self.worker_wait = worker_wait
        self.progress = progress
        self.opened = time.monotonic()
        self.futures: dict[Key, Any] = {}
        self.keys: dict[Key, str] = {}
        self._waiting: dict[str, deque[MeasureSpec]] = {}  # board -> its jobs not yet submitted, in order
        self._current: dict[str, MeasureSpec] = {}  # board -> its job on the cluster now
        self.dead: dict[str, tuple[str, str | None, Key | None]] = {}  # board -> (why, worker, the lost job)
        self.served_by: dict[str, str] = {}  # board -> the worker that advertised it
        self.job_log: list[dict[str, Any]] = []
        self._running: dict[str, dict[str, Any]] = {}  # dask key -> its start event (board jobs)
        self._own: set[str] = set()  # the dask keys of the jobs this dispatcher submitted
        self._lock = threading.Lock()
        self._events = router_of(client)
        self._events.listen(JOB_TOPIC, self._on_job_event)
        self._events.listen(PROGRESS_TOPIC, self._on_progress)

    # ----------------------------------------------------------------- events from workers
    def _on_job_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        with self._lock:
            if message.get("key") not in self._own:  # another dispatcher's job
                return
            self.job_log.append(dict(message))
            if message.get("kind") == PREPARE:
                return
            if message.get("event") == "start":
                self._running[message["key"]] = {**message, "seen": time.monotonic()}
            else:
                self._running.pop(message.get("key", ""), None)

    def _on_progress(self, event: tuple[float, dict[str, Any]]) -> None:
        with self._lock:
            if event[1].get("key") not in self._own:
                return
        if self.progress is not None:
            self.progress(str(event[1].get("message", "")))

    # ----------------------------------------------------------------- submitting
    def prepare(self, spec: MeasureSpec) -> Any:
        """The host-only prepare job of ``spec``'s (device, model, variant), submitted once per run
        (no resource: any worker), shared by every dispatcher given the same ``prepared``."""
        key3 = (spec.board, spec.model, spec.variant)
        future = self.prepared.get(key3)
        if future is None:
            tag = _slug(f"{spec.board}-{spec.model}-{spec.variant}-{uuid.uuid4().hex[:6]}")
            with self._lock:
                self._own.add(f"prepare-{tag}")
            future = self.client.submit(self.host_job, spec.device, spec.model, spec.variant, spec.kernels,
                                        spec.project, key=f"prepare-{tag}", pure=False)
            self.prepared[key3] = future
        return future

    def submit(self, spec: MeasureSpec) -> None:
        """Queue the board job (once per (device, model, variant)), after its prepare job (submitted
        now): on the cluster at once when its board has no job there, else when the board's
        jobs before it are done (see the module docstring)."""
        key3 = (spec.board, spec.model, spec.variant)
        if key3 in self.keys:
            return
        self.prepare(spec)
        with self._lock:
            self.keys[key3] = f"{self.job.__name__.removesuffix('_job')}-" \
                              f"{_slug(f'{spec.board}-{spec.model}-{spec.variant}')}-{uuid.uuid4().hex[:6]}"
            self._own.add(self.keys[key3])
            now = spec.board not in self._current
            if now:
                self._current[spec.board] = spec
            else:
                self._waiting.setdefault(spec.board, deque()).append(spec)
        if now:
            self._send(spec)

    def _send(self, spec: MeasureSpec) -> None:
        key3 = (spec.board, spec.model, spec.variant)
        key = self.keys[key3]
        future = self.client.submit(self.job, spec, self.prepare(spec), key, key=key, pure=False,
                                    resources={board_resource(spec.board): 1})
        with self._lock:
            self.futures[key3] = future
        future.add_done_callback(lambda _, board=spec.board: self._send_next(board))

    def _send_next(self, board: str) -> None:
        """The board's job is done (or cancelled): submit its next one (none for a board set aside)."""
        with self._lock:
            queue = self._waiting.get(board)
            if not queue or board in self.dead:
                self._current.pop(board, None)
                return
            spec = queue.popleft()
            self._current[board] = spec
        try:
            self._send(spec)
        except Exception:  # noqa: BLE001 -- the client is closing: outcome() reports the board's jobs
            with self._lock:
                self._current.pop(board, None)

    def static(self, spec: MeasureSpec) -> Any:
        """The static portability check (farm.measure.static_check.StaticCheck) its prepare job
        made, or None when it could not (its worker died, it failed, or no answer within the
        job timeout): the caller then checks in process."""
        future = self.prepare(spec)
        # picked out on the worker: the controller does not fetch the ELF the prepare job carries
        picked = self.client.submit(_static_of, future, key=f"static-of-{future.key}", pure=False)
        try:
            return picked.result(timeout=self.job_timeout)
        except Exception:  # noqa: BLE001 -- a lost worker, a timeout: checked in process instead
            return None

    # ----------------------------------------------------------------- results
    def outcome(self, spec: MeasureSpec) -> JobOutcome:
        """The finished job of ``spec`` (submitted now if it was not); a lost job as an
        ``infra-error`` record naming the worker."""
        self.submit(spec)
        key3 = (spec.board, spec.model, spec.variant)
        while key3 not in self.futures:  # its board's jobs before it are still on the cluster
            if spec.board in self.dead:
                return self._dead_outcome(spec)
            current = self._current.get(spec.board)
            try:  # that job lost (its worker gone, timed out, no worker): the board is set aside
                if current is None:
                    self._check(spec)
                elif (current.board, current.model, current.variant) in self.futures:
                    self._check(current)
            except (OSError, TimeoutError):  # the scheduler did not answer this time: asked again
                pass
            time.sleep(POLL)
        future = self.futures[key3]
        while True:
            if future.done():
                if future.cancelled():
                    if spec.board in self.dead:
                        return self._dead_outcome(spec)
                    self._set_aside(spec.board, f"{spec.label} was cancelled on the cluster", None,
                                    (spec.board, spec.model, spec.variant))
                    return self._dead_outcome(spec)
                try:
                    return future.result()
                except Exception as exc:  # noqa: BLE001 -- a lost worker, or the job's own failure
                    lost = self._lost(spec, exc)
                    return lost if lost is not None else self._failed_outcome(spec, exc)
            try:
                found = self._check(spec)
            except (OSError, TimeoutError):  # the scheduler did not answer this time: asked again
                found = None
            if found is not None:
                return found
            try:
                future.result(timeout=POLL)
            except TimeoutError:
                pass
            except Exception:  # noqa: BLE001 -- handled at the top of the loop
                pass

    def _lost(self, spec: MeasureSpec, exc: BaseException) -> JobOutcome | None:
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):
            worker = getattr(exc, "last_worker", None)
            address = getattr(worker, "address", None) or self._started_on(spec) or self.served_by.get(spec.board)
            self._set_aside(spec.board, f"worker {address} died while running {spec.label}", address,
                            (spec.board, spec.model, spec.variant))
        else:
            return None
        return self._dead_outcome(spec)

    def _failed_outcome(self, spec: MeasureSpec, exc: BaseException) -> JobOutcome:
        """The job raised on its worker instead of handing back an outcome: ``infra-error``
        naming the exception (its board goes on: the next job may well run)."""
        worker = self._started_on(spec)
        where = f" on worker {worker}" if worker else ""
        message = f"{spec.label}: the job failed{where}: {type(exc).__name__}: {exc}"
        now = time.time()
        return JobOutcome(spec.board, worker or "none", now, now,
                          lost_record(spec, message, worker, infra=type(exc).__name__))

    def _started_on(self, spec: MeasureSpec) -> str | None:
        """The worker ``spec``'s board job started on (None: no start event seen)."""
        key = self.keys.get((spec.board, spec.model, spec.variant))
        with self._lock:
            starts = [m for m in self.job_log if m.get("key") == key and m.get("event") == "start"]
        return str(starts[-1]["worker"]) if starts else None

    def _dead_outcome(self, spec: MeasureSpec) -> JobOutcome:
        why, worker, lost = self.dead[spec.board]
        now = time.time()
        if lost == (spec.board, spec.model, spec.variant):
            message = f"{why}; {spec.board} is not used again tonight"
        else:
            message = f"{spec.label} not run: {why}; {spec.board} is not used again tonight"
        return JobOutcome(spec.board, worker or "none", now, now, lost_record(spec, message, worker))

    def _set_aside(self, board: str, why: str, worker: str | None, lost: Key | None = None) -> None:
        """The board is done for the night (``lost``: the job it happened in): its queued jobs are cancelled."""
        if board in self.dead:
            return
        self.dead[board] = (why, worker, lost)
        with self._lock:
            self._waiting.pop(board, None)  # never submitted: each reported as not run
            pending = [f for k, f in self.futures.items() if k[0] == board and not f.done()]
        if pending:
            self.client.cancel(pending)

    def workers(self) -> dict[str, Any]:
        """The scheduler's workers now, address -> info (asked directly: the client's cached
        scheduler_info is refreshed in the background without per-worker information)."""
        identity = self.client.sync(self.client.scheduler.identity, n_workers=-1)
        return dict(identity.get("workers", {}))

    def _check(self, spec: MeasureSpec) -> JobOutcome | None:
        """Whether ``spec``'s job is lost (its board set aside, its worker gone, timed out, no worker)."""
        board = spec.board
        if board in self.dead:
            return self._dead_outcome(spec)
        workers = self.workers()
        for address, info in workers.items():  # every board seen served, not only this one's
            for served in boards_of_worker(info.get("resources", {})):
                self.served_by[served] = address
        key3 = (board, spec.model, spec.variant)
        key = self.keys[key3]
        with self._lock:
            started = self._running.get(key)
            # another job of this board that started on a worker now gone: the board went with it
            gone = [m for k, m in self._running.items()
                    if k != key and m.get("board") == board and m.get("worker") not in workers]
        if started is None and gone:
            lost_key = next((k3 for k3, k in self.keys.items() if k == gone[0]["key"]), None)
            label = f"{board} {lost_key[1]}/{lost_key[2]}" if lost_key else f"a job of {board}"
            self._set_aside(board, f"worker {gone[0]['worker']} died while running {label}", gone[0]["worker"],
                            lost_key)
            return self._dead_outcome(spec)
        if started is not None:
            worker = started["worker"]
            if worker not in workers:
                self._set_aside(board, f"worker {worker} died while running {spec.label}", worker, key3)
                return self._dead_outcome(spec)
            if time.monotonic() - started["seen"] > self.job_timeout:
                self._set_aside(board, f"{spec.label}: no result within {self.job_timeout:.0f} s on worker {worker} "
                                       f"(per-job timeout)", worker, key3)
                return self._dead_outcome(spec)
            return None
        known = self.served_by.get(board)
        if known is not None and known not in workers:
            running = self._interrupted(board)  # its start event may not have arrived before the worker died
            if running is not None:
                self._set_aside(board, f"worker {known} died while running {board} {running[1]}/{running[2]}",
                                known, running)
            else:
                self._set_aside(board, f"worker {known} serving {board} left", known)
            return self._dead_outcome(spec)
        if known is None and time.monotonic() - self.opened > self.worker_wait:
            self._set_aside(board, f"no worker advertises {board_resource(board)} "
                                   f"(waited {self.worker_wait:.0f} s for one to join)", None)
            return self._dead_outcome(spec)
        return None

    def _interrupted(self, board: str) -> Key | None:
        """The job of ``board`` that was running on a worker when it died, as the scheduler saw it
        (a task whose worker died while processing it is "suspicious"), else None."""
        names = {k: k3 for k3, k in self.keys.items() if k3[0] == board}
        try:
            hit = self.client.run_on_scheduler(_suspicious_tasks, names=list(names))
        except Exception:  # noqa: BLE001 -- a scheduler that will not run it: no more is known
            return None
        return names[hit[0]] if hit else None

    def close(self) -> None:
        """Cancel what nobody asked for; stop listening to the workers."""
        with self._lock:
            self._waiting.clear()
            pending = [f for f in self.futures.values() if not f.done()]
        if pending:
            try:
                self.client.cancel(pending)
            except Exception:  # noqa: BLE001 -- the cluster is going away anyway
                pass
        for topic, handler in ((JOB_TOPIC, self._on_job_event), (PROGRESS_TOPIC, self._on_progress)):
            try:
                self._events.unlisten(topic, handler)
            except Exception:  # noqa: BLE001 -- the cluster is going away anyway
                pass
