"""The project of this process: where its file is, loading it once, registering its models.

    path = project_path(explicit)           # --project FILE, else $FARM_PROJECT, else ./tinyfarm.yaml
    project = activate_project(path, inventory.names)   # None: no project file, the zoo as before
    current_project()                       # what is active here (a worker: activated from $FARM_PROJECT)

Activating a project registers its models with farm.models (farm.models.sources.
register_project_models): afterwards ``build_variant("my-model", "int8", ...)``,
``list_models()`` and the HIL suite see the project's models and the zoo examples it
includes. It also exports ``$FARM_PROJECT`` (the absolute path), so child processes
(pytest run by ``farm nightly``, Dask workers of a local cluster) activate the same project.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from farm.config.inventory_errors import InventoryIssue
from farm.project.file import PROJECT_FILE_NAME, Project, ProjectError, load_project

#: the environment variable naming the project file (the default of --project / --farm-project)
PROJECT_ENV = "FARM_PROJECT"

__all__ = ["PROJECT_ENV", "Project", "ProjectError", "activate_project", "current_project", "deactivate_project",
           "project_path", "use_project"]


@dataclass
class _Active:
    project: Project | None = None
    key: tuple[str, int, frozenset[str] | None] | None = None


_active = _Active()
_lock = threading.RLock()  # a worker's board jobs run in threads: one activation at a time


def project_path(explicit: Path | None = None) -> Path | None:
    """The project file of this process: ``explicit`` (--project), else $FARM_PROJECT, else
    ./tinyfarm.yaml when it exists; None: no project (the zoo, as before)."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(PROJECT_ENV, "").strip()
    if env:
        return Path(env)
    default = Path(PROJECT_FILE_NAME)
    return default.resolve() if default.is_file() else None


def activate_project(path: Path | None, device_names: Collection[str] | None = None, *,
                     export: bool = True) -> Project | None:
    """Load and validate the project at ``path`` (its budgets' devices checked against
    ``device_names`` when given), register its models with farm.models, and (``export``) set
    $FARM_PROJECT for child processes. ``None``: no project; a project activated before in
    this process is deactivated (the zoo, as before). Raises :class:`ProjectError` (naming
    file, line and field; for a path that is not there, says so)."""
    with _lock:
        return _activate(path, device_names, export)


def _activate(path: Path | None, device_names: Collection[str] | None, export: bool) -> Project | None:
    if path is None:
        deactivate_project()
        return None
    path = Path(path).resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ProjectError(path, [InventoryIssue(None, "", "no such project file (--project FILE, "
                                                       f"${PROJECT_ENV}, else ./{PROJECT_FILE_NAME})")]) from None
    key = (str(path), stamp, frozenset(device_names) if device_names is not None else None)
    if _active.project is not None and _active.key is not None and (
            _active.key == key or (device_names is None and _active.key[:2] == key[:2])):
        project = _active.project
    else:
        project = load_project(path, device_names)
        from farm.models.sources import ModelSourceError, register_project_models

        try:
            register_project_models(project.project_models, project.zoo)
        except ModelSourceError as exc:
            raise ProjectError(path, [InventoryIssue(None, "", str(exc))]) from None
        _active.project, _active.key = project, key
    if export:
        os.environ[PROJECT_ENV] = str(project.path)
    return project


def deactivate_project() -> None:
    """Back to no project: every zoo model registered, as before any project."""
    with _lock:
        if _active.project is None:
            return
        from farm.models.registry import clear_project

        clear_project()
        _active.project, _active.key = None, None


def current_project() -> Project | None:
    """The project active in this process; in a process that activated none (a Dask worker,
    a child process), the one $FARM_PROJECT names, activated now."""
    if _active.project is None:
        env = os.environ.get(PROJECT_ENV, "").strip()
        if env:
            return activate_project(Path(env), export=False)
    return _active.project


def use_project(path: str | Path | None) -> Project | None:
    """What a job on a worker runs under: the project its controller named (``path``), else
    the process's own (current_project)."""
    if path:
        return activate_project(Path(path), export=False)
    return current_project()
