#!/usr/bin/env python3
"""Benchmark of farm/scale (a benchmark, not a test): prints figures.

(i) the scheduler's overhead per job: workers advertising BOARDS fake board resources
    (``board:sim-N=1``) run JOBS no-op jobs, each asking for one board; the wall time
    per job is what one scheduler costs a board job (jobs that take no time themselves);
(ii) with ``--nightly``: `farm nightly` wall time on the inventory, one board after the
    other (``--scheduler in-process``) vs on the local cluster (``--scheduler local``),
    next to the goal (cluster <= 0.55 x serial). The zoo by default; FARM_MODELS=sine
    for a short one. Each nightly uses its own results database in a temporary folder.

    python scripts/bench_scale.py [--boards 120] [--workers 4] [--jobs-per-board 5]
    FARM_MODELS=sine python scripts/bench_scale.py --nightly
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def nightly_seconds(scheduler: str, extra: list[str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "farm", "nightly", "--no-progress", "--scheduler", scheduler,
                               "--db", f"sqlite:///{tmp}/results.db", *extra], cwd=REPO, capture_output=True,
                              text=True)
        return time.monotonic() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", type=int, default=120)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs-per-board", type=int, default=5)
    parser.add_argument("--nightly", action="store_true", help="also time farm nightly serial vs cluster")
    parser.add_argument("-k", dest="keyword", help="pass -k to both nightlies")
    args = parser.parse_args()
    per_job, rate = scheduler_overhead(args.boards, args.workers, args.jobs_per_board)
    print(f"scheduler overhead: {per_job * 1e3:.2f} ms per board job ({rate:.0f} jobs/s) with {args.boards} "
          f"simulated boards on {args.workers} workers, {args.boards * args.jobs_per_board} no-op jobs")
    if args.nightly:
        extra = ["-k", args.keyword] if args.keyword else []
        models = os.environ.get("FARM_MODELS", "the zoo")
        serial, code_serial = nightly_seconds("in-process", extra)
        cluster, code_cluster = nightly_seconds("local", extra)
        print(f"farm nightly ({models}): serial {serial:.1f} s (exit {code_serial}), local cluster {cluster:.1f} s "
              f"(exit {code_cluster}): {cluster / serial:.2f} x serial (goal <= {GOAL} x)")


if __name__ == "__main__":
    main()
