"""Options, the project (activated before collection), the farm_select marker, and device
parametrization at collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: where ``measure`` reports its steps: an object with ``step(message)`` (building, flashing,
#: measuring ...) and ``measured(record, seconds)``; ``farm nightly`` puts its progress display here.
PROGRESS_KEY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinyfarm", "tinyfarm hardware-in-the-loop")
    group.addoption("--farm-devices", default="devices.yaml", metavar="FILE",
                    help="inventory of devices to run HIL tests on (default: devices.yaml)")
    group.addoption("--farm-project", default=None, metavar="FILE",
                    help="project file: the team's models, data and budgets (default: $FARM_PROJECT, "
                         "else ./tinyfarm.yaml when present, else the zoo)")
    group.addoption("--farm-run-id", type=int, default=None, metavar="ID",
                    help="store results under this run id (default: a new run of kind 'pytest')")
    group.addoption("--farm-db", default=None, metavar="URL",
                    help="results database URL (default: $FARM_DB_URL or sqlite in the state folder)")
    group.addoption("--farm-lease-wait", type=float, default=900.0, metavar="SECONDS",
                    help="wait this long for a device that another run holds, then skip it (default: 900)")
    group.addoption("--farm-skip-busy", action="store_true",
                    help="skip a device that another run holds, without waiting")
    group.addoption("--farm-scheduler", default=None, metavar="ADDRESS",
                    help="measure on a Dask cluster: 'local' (a local cluster, every board at once), "
                         "tcp://host:8786 or tls://host:8786; 'in-process' (default, unless $FARM_SCHEDULER "
                         "says otherwise): one board after the other in this process")
    group.addoption("--farm-job-timeout", type=float, default=1800.0, metavar="SECONDS",
                    help="on a cluster: a board job with no result this long after it started is "
                         "infra-error and its board is set aside for the session (default: 1800)")
    group.addoption("--farm-worker-wait", type=float, default=120.0, metavar="SECONDS",
                    help="on a cluster: how long a board that no worker advertises waits for one to join "
                         "(default: 120)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "farm_select(**attrs): run only on devices whose attributes match, e.g. fpu='none', tag='dsp'"
    )
    activate_project_for(config)


def activate_project_for(config: pytest.Config) -> Any:
    """The session's project (``--farm-project``, else $FARM_PROJECT, else ./tinyfarm.yaml; None:
    the zoo), activated before collection so the suite, the planning and ``measure`` know its
    models; a bad project file is a usage error naming file, line and field. Only an explicit
    ``--farm-project`` is exported to child processes ($FARM_PROJECT): a project found in the
    current directory stays this session's (the jobs of its cluster carry its path)."""
    from farm.project.current import ProjectError, activate_project, project_path

    explicit = config.getoption("--farm-project", None)
    path = project_path(Path(explicit) if explicit else None)
    if path is None:
        return None
    try:
        return activate_project(path, _device_names(Path(config.getoption("--farm-devices", "devices.yaml"))),
                                export=explicit is not None)
    except ProjectError as exc:
        raise pytest.UsageError(str(exc)) from None


def _device_names(path: Path) -> list[str] | None:
    """The inventory's device names, to check the project's budgets against; None when the
    inventory is not there or does not load (load_inventory_for says why, when it is needed)."""
    from farm.config.inventory import InventoryError, load_inventory

    if not path.is_file():
        return None
    try:
        return list(load_inventory(path).names)
    except (InventoryError, OSError):
        return None


def load_inventory_for(config: pytest.Config) -> Any:
    """The inventory of ``--farm-devices`` (read once per session) by the one loader,
    farm.config.inventory.load_inventory; its error becomes a pytest usage error."""
    from farm.config.inventory import InventoryError, load_inventory

    cached = getattr(config, "_farm_inventory", None)
    if cached is not None:
        return cached
    path = Path(config.getoption("--farm-devices"))
    try:
        inventory = load_inventory(path)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    except FileNotFoundError:
        raise pytest.UsageError(f"{path}: inventory file not found (--farm-devices FILE)") from None
    config._farm_inventory = inventory  # type: ignore[attr-defined]
    return inventory


def db_url_for(config: pytest.Config) -> str:
    """The results database of ``--farm-db`` (default: $FARM_DB_URL, else the state folder's)."""
    from farm.config.state import default_db_url, state_dir

    return config.getoption("--farm-db") or default_db_url(state_dir())


def lease_policy_for(config: pytest.Config, purpose: str) -> Any:
    """The LeasePolicy the session's boards are opened under (farm.board.leases): the
    ``--farm-db`` database, ``--farm-lease-wait`` seconds (none with ``--farm-skip-busy``)."""
    from farm.board.leases import LeasePolicy

    wait = 0.0 if config.getoption("--farm-skip-busy") else float(config.getoption("--farm-lease-wait"))
    return LeasePolicy(db_url_for(config), wait, purpose)


def _matches(device: Any, selector: dict[str, Any]) -> bool:
    for key, wanted in selector.items():
        if key == "tag":
            if wanted not in device.tags:
                return False
        elif getattr(device, key) != wanted:
            return False
    return True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" not in metafunc.fixturenames:
        return
    devices = list(load_inventory_for(metafunc.config).devices)
    for marker in metafunc.definition.iter_markers("farm_select"):
        devices = [d for d in devices if _matches(d, marker.kwargs)]
    metafunc.parametrize("device", devices, ids=[d.name for d in devices], scope="session")
