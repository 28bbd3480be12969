"""How a run is named to people, the same in every command and report."""

from __future__ import annotations

from typing import Any


def run_label(run: Any) -> str:
    """``run 14 (nightly, passed, 2026-11-26 18:40 UTC, commit 4e50bc4)``"""
    when = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
    commit = (run.git_commit or "no commit")[:12] + ("-dirty" if (run.git_commit or "").endswith("-dirty") else "")
    return f"run {run.id} ({run.kind}, {run.status}, {when}, commit {commit})"
