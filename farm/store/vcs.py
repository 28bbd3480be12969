"""Provenance: the git commit of the project under test (its models, data and budgets).

The repository is the one the command runs in (the current directory, or one of its parents): a
team's project when tinyfarm is installed, this checkout when it runs from here. tinyfarm's own
version is recorded next to it (the run's ``farm_version``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(folder: Path | None = None) -> str | None:
    """HEAD of the git repository holding `folder` (default: the current directory), with
    ``-dirty`` when tracked files have local changes; None outside a repository."""
    where = str(folder or Path.cwd())
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")
