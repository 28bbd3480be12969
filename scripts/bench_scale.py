#!/usr/bin/env python3
"""Benchmark of farm/scale (a benchmark, not a test): prints figures.

(i) the scheduler's overhead per job: workers advertising BOARDS fake board resources
    (``board:sim-N=1``) run JOBS no-op jobs, each asking for one board; the wall time
    per job is what one scheduler costs a board job (jobs that take no time themselves);
(ii) with ``--nightly``: `farm nightly` wall time on the inventory, one board after the
    other (``--scheduler in-process``) vs on the local cluster (``--scheduler local``),
    next to the goal (cluster <= 0.55 x serial), everything built (run it once before to
    build), whether the two nights' results are identical (statuses, every window's
    count, the verdict), and where the time went (pytest vs judge, each board's jobs,
    the host-only prepare jobs); ``--from-nothing`` adds a cluster night in an empty
    state folder (models trained and converted, every firmware built). The zoo by
    default; FARM_MODELS=sine for a short one. Each nightly uses its own results database.

    python scripts/bench_scale.py [--boards 120] [--workers 4] [--jobs-per-board 5]
    FARM_MODELS=sine python scripts/bench_scale.py --nightly [--warm-up] [--from-nothing] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.55


def scheduler_overhead(boards: int, workers: int, jobs_per_board: int) -> tuple[float, float]:
    """(seconds per job, jobs per second) with ``boards`` fake boards on ``workers`` workers."""
    from distributed import Client, Scheduler, SpecCluster, Worker

    from farm.scale.cluster import quiet_logs
    from farm.scale.jobs import noop_job
    from farm.scale.resources import board_resource, resources_for, split_boards

    quiet_logs()
    names = [f"sim-{i}" for i in range(boards)]
    groups = split_boards(names, workers)
    spec = {f"sim-worker-{i}": {"cls": Worker, "options": {"nthreads": len(g), "resources": resources_for(g),
                                                          "host": "127.0.0.1", "dashboard": False}}
            for i, g in enumerate(groups)}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0, "dashboard_address": None}}
    with SpecCluster(workers=spec, scheduler=scheduler) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(len(groups))
        warm = [client.submit(noop_job, key=f"warm-{n}", resources={board_resource(n): 1}) for n in names]
        client.gather(warm)
        jobs = [(n, j) for j in range(jobs_per_board) for n in names]
        started = time.perf_counter()
        futures = [client.submit(noop_job, 0.0, f"job-{n}-{j}", key=f"job-{n}-{j}", pure=False,
                                 resources={board_resource(n): 1}) for n, j in jobs]
        client.gather(futures)
        seconds = time.perf_counter() - started
    return seconds / len(jobs), len(jobs) / seconds


@dataclass
class Night:
    """One timed `farm nightly`: its wall time, exit code, run and results (its own database)."""

    scheduler: str
    seconds: float
    exit_code: int
    run: Any  # farm.store.records.RunRecord
    results: list[Any]  # farm.store.records.ResultRecord
    #: user + system CPU seconds of the night and every process under it (controller, workers,
    #: emulators, builds: each reaped by its parent, so counted in RUSAGE_CHILDREN)
    cpu_seconds: float = 0.0
    db: str = ""  # the night's results database (kept, for a closer look)

    def by_key(self) -> dict[tuple[str, str, str], Any]:
        return {(r.device, r.model, r.variant): r for r in self.results}

    def breakdown(self) -> dict[str, Any]:
        """Where the wall time went: pytest (build + measure, overlapped on a cluster) vs the
        judge and report after it; per board the seconds its board jobs took (on a cluster:
        the workers' job log), and the host-only prepare jobs (conversion, codegen, builds)."""
        pytest_seconds = float((self.run.details or {}).get("seconds") or 0.0)
        boards: dict[str, float] = {}
        prepare = 0.0
        built = 0
        for r in self.results:
            d = r.details or {}
            if "job_started" in d and "job_ended" in d:
                boards[r.device] = boards.get(r.device, 0.0) + float(d["job_ended"]) - float(d["job_started"])
            prepare += float(d.get("prepare_seconds") or 0.0)
            built += 0 if d.get("firmware_cached", True) else 1
        return {"wall_seconds": round(self.seconds, 1), "cpu_seconds": round(self.cpu_seconds, 1),
                "cores_busy": round(self.cpu_seconds / self.seconds, 2) if self.seconds else 0.0,
                "pytest_seconds": round(pytest_seconds, 1),
                "judge_and_report_seconds": round(self.seconds - pytest_seconds, 1),
                "board_job_seconds": {b: round(t, 1) for b, t in sorted(boards.items())}, "db": self.db,
                "prepare_job_seconds": round(prepare, 1), "firmware_built": built}


def timed_nightly(scheduler: str, extra: list[str], home: str | None = None) -> Night:
    """`farm nightly --scheduler SCHEDULER` with its own results database; ``home``: its own
    state folder (nothing built) instead of this checkout's."""
    from farm.store.results import ResultsStore

    tmp = tempfile.mkdtemp(prefix="farm-bench-nightly-")
    url = f"sqlite:///{tmp}/results.db"
    env = dict(os.environ)
    if home is not None:
        env["FARM_HOME"] = home
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "farm", "nightly", "--no-progress", "--scheduler", scheduler,
                           "--db", url, *extra], cwd=REPO, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    store = ResultsStore(url)
    runs = store.runs("nightly")
    if not runs:
        raise SystemExit(f"farm nightly --scheduler {scheduler} stored no run (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    run = runs[-1]
    return Night(scheduler, seconds, done.returncode, run, store.results_for_run(run.id), cpu, url)


def differences(a: Night, b: Night) -> list[str]:
    """What differs between two nights' results: a (device, model, variant) in one only, its
    status, its instruction/cycle counts (every window, to the count), the verdict."""
    found = []
    ka, kb = a.by_key(), b.by_key()
    for key in sorted(set(ka) ^ set(kb)):
        found.append(f"{' '.join(key)}: only in the {'serial' if key in ka else 'cluster'} night")
    for key in sorted(set(ka) & set(kb)):
        x, y = ka[key], kb[key]
        if x.status != y.status:
            found.append(f"{' '.join(key)}: status {x.status} vs {y.status}")
        elif x.count_median != y.count_median or list(x.window_counts or []) != list(y.window_counts or []):
            found.append(f"{' '.join(key)}: counts {x.count_median} vs {y.count_median}")
    if (a.exit_code, a.run.status) != (b.exit_code, b.run.status):
        found.append(f"verdict: exit {a.exit_code} ({a.run.status}) vs exit {b.exit_code} ({b.run.status})")
    return found


def nightly_comparison(extra: list[str], from_nothing: bool, warm_up: bool) -> dict[str, Any]:
    """Serial vs local cluster on the inventory, everything built (this checkout's state folder;
    ``warm_up``: a first, untimed cluster night builds what is not), then optionally from
    nothing built."""
    if warm_up:
        timed_nightly("local", extra)
    serial = timed_nightly("in-process", extra)
    cluster = timed_nightly("local", extra)
    out: dict[str, Any] = {"models": os.environ.get("FARM_MODELS", "the zoo"), "goal_ratio": GOAL,
                           "serial": serial.breakdown(), "cluster": cluster.breakdown(),
                           "ratio": round(cluster.seconds / serial.seconds, 3),
                           "results": len(cluster.results), "differences": differences(serial, cluster),
                           "verdict": {"serial": [serial.exit_code, serial.run.status],
                                       "cluster": [cluster.exit_code, cluster.run.status]}}
    if from_nothing:
        home = tempfile.mkdtemp(prefix="farm-bench-home-")
        fresh = timed_nightly("local", extra, home=home)
        out["from_nothing"] = fresh.breakdown()
        out["from_nothing_differences"] = differences(cluster, fresh)
    return out


def print_comparison(c: dict[str, Any]) -> None:
    s, k = c["serial"], c["cluster"]
    print(f"farm nightly ({c['models']}), everything built: serial {s['wall_seconds']:.1f} s, local cluster "
          f"{k['wall_seconds']:.1f} s = {c['ratio']:.2f} x serial (goal <= {c['goal_ratio']} x: "
          f"{'met' if c['ratio'] <= c['goal_ratio'] else 'NOT met'})")
    print(f"  {c['results']} results; "
          + ("identical (statuses, every window's count, verdict)" if not c["differences"]
             else f"{len(c['differences'])} differences: " + "; ".join(c["differences"][:10])))
    for name, b in (("serial", s), ("cluster", k)) + ((("from nothing", c["from_nothing"]),)
                                                       if "from_nothing" in c else ()):
        boards = ", ".join(f"{d} {t:.0f} s" for d, t in b["board_job_seconds"].items()) or "not recorded in process"
        print(f"  {name}: wall {b['wall_seconds']:.0f} s, CPU {b['cpu_seconds']:.0f} s "
              f"({b['cores_busy']:.2f} cores busy) = pytest {b['pytest_seconds']:.0f} s (builds and "
              f"measurements) + judge and report {b['judge_and_report_seconds']:.0f} s; board jobs: {boards}; "
              f"prepare jobs {b['prepare_job_seconds']:.0f} s, {b['firmware_built']} firmware built")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", type=int, default=120)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs-per-board", type=int, default=5)
    parser.add_argument("--nightly", action="store_true", help="also time farm nightly serial vs cluster")
    parser.add_argument("-k", dest="keyword", help="pass -k to both nightlies")
    parser.add_argument("--from-nothing", action="store_true",
                        help="with --nightly: also a cluster night in an empty state folder (models, builds)")
    parser.add_argument("--warm-up", action="store_true",
                        help="with --nightly: first an untimed night that builds what is not built yet")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    args = parser.parse_args()
    per_job, rate = scheduler_overhead(args.boards, args.workers, args.jobs_per_board)
    figures: dict[str, Any] = {"scheduler_ms_per_job": round(per_job * 1e3, 2), "jobs_per_second": round(rate),
                               "simulated_boards": args.boards, "workers": args.workers,
                               "jobs": args.boards * args.jobs_per_board}
    if not args.json:
        print(f"scheduler overhead: {per_job * 1e3:.2f} ms per board job ({rate:.0f} jobs/s) with {args.boards} "
              f"simulated boards on {args.workers} workers, {args.boards * args.jobs_per_board} no-op jobs")
    if args.nightly:
        extra = ["-k", args.keyword] if args.keyword else []
        figures["nightly"] = nightly_comparison(extra, args.from_nothing, args.warm_up)
        if not args.json:
            print_comparison(figures["nightly"])
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
