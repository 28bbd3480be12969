"""What every ``farm`` command shares: exit codes, the two consoles, the usage error, the
options every command takes the same way (``--devices FILE``, ``--db URL``, ``--project FILE``; ``--lease-wait`` /
``--skip-busy`` on the commands that use a board; ``--thresholds``), and the checks of what the
user named: devices, models, variants, runs.

Exit codes: 0 success; 1 a measurement failed or a check/test failed; 2 bad input
(inventory, model, arguments) — reported in one message, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# wide tables when the output is a file or a CI log rather than a terminal
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

DEFAULT_DEVICES = Path("devices.yaml")
DEFAULT_LEASE_WAIT = 900.0
RUN_REFS = "a run id, 'latest', 'latest-nightly' or 'baseline'"

_DEVICES_KEY = "farm.devices_file"
_DB_KEY = "farm.db_url"
_PROJECT_KEY = "farm.project_file"
_ACTIVE_KEY = "farm.project"


class FarmUsageError(click.ClickException):
    """Bad input: one sentence on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]error:[/] {escape(self.message)}", soft_wrap=True)


# --------------------------------------------------------------------------- --devices and --db
def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """An option callback that keeps a given value in the context chain's shared ``meta``: the
    option nearest the command is parsed last, so it wins (command > group > default)."""

    def _set(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.meta[key] = value

    return _set


def farm_options(fn: Any = None, *, activate: bool = True) -> Any:
    """``--devices FILE``, ``--db URL`` and ``--project FILE``, on the ``farm`` group and on every
    command, with the same help. Precedence: the command's option, else the group's, else
    (``--db``) $FARM_DB_URL, else the sqlite database in the state folder; (``--devices``)
    ./devices.yaml; (``--project``) $FARM_PROJECT, else ./tinyfarm.yaml when there, else none
    (the zoo). The command activates the project before it runs (its models registered with
    farm.models); a bad project file is a usage error naming file, line and field.
    ``@farm_options(activate=False)``: the same options, no project activated (``farm init``)."""
    if fn is None:
        return lambda f: farm_options(f, activate=activate)
    command = fn

    @functools.wraps(command)
    def with_project(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if activate and not (isinstance(ctx.command, click.Group) and ctx.invoked_subcommand is not None):
            activate_project_for(ctx)  # once, by the command that runs (not the group before it)
        return command(*args, **kwargs)

    fn = click.option("--project", "project_file", type=click.Path(path_type=Path), default=None,
                      expose_value=False, is_eager=True, callback=_remember(_PROJECT_KEY),
                      help="Project file: the team's models, data and budgets (default: $FARM_PROJECT, "
                           "else ./tinyfarm.yaml when present, else the zoo).")(with_project)
    fn = click.option("--db", "db_url", metavar="URL", default=None, expose_value=False, is_eager=True,
                      callback=_remember(_DB_KEY),
                      help="Results database URL (default: $FARM_DB_URL, else sqlite in the state folder), "
                           "e.g. postgresql://farm@db-host:5432/farm.")(fn)
    return click.option("--devices", "devices_file", type=click.Path(path_type=Path), default=None,
                        expose_value=False, is_eager=True, callback=_remember(_DEVICES_KEY),
                        help=f"Inventory file (default: {DEFAULT_DEVICES}).")(fn)


def activate_project_for(ctx: click.Context) -> Any:
    """Activate this command's project (``--project``, else $FARM_PROJECT, else ./tinyfarm.yaml;
    None: no project, the zoo) once: load it, check the devices its budgets name against the
    inventory (when the inventory loads), register its models. farm.project.current.Project."""
    if _ACTIVE_KEY in ctx.meta:
        return ctx.meta[_ACTIVE_KEY]
    from farm.project.current import ProjectError, activate_project, project_path

    path = project_path(ctx.meta.get(_PROJECT_KEY))
    try:
        project = activate_project(path, _device_names(devices_file(ctx)) if path is not None else None)
    except ProjectError as exc:
        raise FarmUsageError(str(exc)) from None
    ctx.meta[_ACTIVE_KEY] = project
    return project


def project_of(ctx: click.Context) -> Any:
    """The project this command runs under (None: the zoo)."""
    return activate_project_for(ctx)


def _device_names(path: Path) -> list[str] | None:
    """The inventory's device names, to check a project's budgets against; None when the
    inventory is not there or does not load (the command that needs it says why)."""
    from farm.config.inventory import InventoryError, load_inventory as load

    if not path.is_file():
        return None
    try:
        return list(load(path).names)
    except (InventoryError, OSError):
        return None


def devices_file(ctx: click.Context) -> Path:
    """The inventory file this command works on (``--devices``)."""
    return Path(ctx.meta.get(_DEVICES_KEY) or DEFAULT_DEVICES)


def db_url(ctx: click.Context) -> str:
    """The results database this command works on (``--db``, else $FARM_DB_URL, else the state folder's)."""
    from farm.config.state import default_db_url, state_dir

    return ctx.meta.get(_DB_KEY) or default_db_url(state_dir())


def open_store(url: str) -> Any:
    """The results store at ``url``; a bad URL or dead server is a usage error."""
    from farm.store.results import ResultsError, ResultsStore

    try:
        return ResultsStore(url)
    except ResultsError as exc:
        raise FarmUsageError(str(exc)) from None


# --------------------------------------------------------------------------- leases
def lease_options(fn: Any) -> Any:
    """``--lease-wait SECONDS`` and ``--skip-busy``, on every command that uses a board."""
    fn = click.option("--skip-busy", "skip_busy", is_flag=True,
                      help="Skip devices that another run holds, without waiting.")(fn)
    return click.option("--lease-wait", "lease_wait", type=float, default=DEFAULT_LEASE_WAIT, show_default=True,
                        metavar="SECONDS", help="Wait this long for a device that another run holds, then skip it.")(fn)


def lease_wait_for(lease_wait: float, skip_busy: bool) -> float:
    """Seconds to wait for a busy device: none with ``--skip-busy``."""
    return 0.0 if skip_busy else lease_wait


def lease_policy(ctx: click.Context, lease_wait: float, skip_busy: bool, purpose: str) -> Any:
    """The LeasePolicy a board is opened under (farm.board.leases): this command's database,
    how long to wait for a busy device, and who holds it (``farm infer``...)."""
    from farm.board.leases import LeasePolicy

    return LeasePolicy(db_url(ctx), lease_wait_for(lease_wait, skip_busy), purpose)


def print_skipped(exc: BaseException) -> None:
    """``skipped: qemu-m3 is busy: leased by ...`` (a busy or quarantined device)."""
    err.print(f"[yellow]skipped:[/] {escape(str(exc))}")


# --------------------------------------------------------------------------- what the user named
def load_inventory(path: Path) -> Any:
    """The inventory at ``path``; a malformed or missing file is a usage error naming file/line/field."""
    from farm.config.inventory import InventoryError, load_inventory as load

    try:
        return load(path)
    except InventoryError as exc:
        raise FarmUsageError(str(exc)) from None
    except FileNotFoundError:
        raise FarmUsageError(f"{path}: inventory file not found (pass --devices FILE)") from None


def select_devices(inventory: Any, names: Sequence[str]) -> list[Any]:
    """The devices named (all when none is), refusing unknown names in one sentence."""
    if not names:
        return list(inventory.devices)
    known = {d.name: d for d in inventory.devices}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise FarmUsageError(f"unknown device(s) {', '.join(unknown)}; the inventory has: {', '.join(known)}")
    return [known[n] for n in names]


def known_models() -> list[str]:
    """The one list a model name is checked against: every registered model (a model named
    explicitly is available whatever $FARM_MODELS selects)."""
    from farm.models.registry import registered_models

    return registered_models()


def default_models() -> list[str]:
    """The models a command works through when none is named ($FARM_MODELS, else all)."""
    from farm.models.registry import UnknownModelError, list_models

    try:
        return list_models()
    except UnknownModelError as exc:
        raise FarmUsageError(str(exc)) from None


def check_models_and_variants(model_names: Sequence[str], variants: Sequence[str], hint: str = "", *,
                              files: bool = False) -> None:
    """Refuse, in one sentence, model names that are not known models and unknown variants.
    With ``files``, a name ending in ``.tflite`` is a user's model file, which must exist."""
    from farm.models import VARIANTS
    from farm.models.user_tflite import is_tflite_path

    known = known_models()
    if files:
        missing = [m for m in model_names if m not in known and is_tflite_path(m) and not Path(m).is_file()]
        if missing:
            raise FarmUsageError(f"model file(s) {', '.join(missing)}: no such file")
    unknown = [m for m in model_names if m not in known and not (files and is_tflite_path(m))]
    if unknown:
        raise FarmUsageError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}{hint}")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise FarmUsageError(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")


# --------------------------------------------------------------------------- thresholds and runs
def thresholds_option(fn: Any) -> Any:
    return click.option("--thresholds", "thresholds_file", type=click.Path(path_type=Path), default=None,
                        help="Regression thresholds (default: $FARM_THRESHOLDS, else ./farm-thresholds.toml "
                             "when present, else the built-in defaults).")(fn)


def load_thresholds_for_cli(path: Path | None) -> Any:
    from farm.config.thresholds import ThresholdsError, load_thresholds

    try:
        return load_thresholds(path)
    except ThresholdsError as exc:
        raise FarmUsageError(str(exc)) from None


def resolve_run(store: Any, ref: str) -> Any:
    """The RunRecord that ``ref`` names: an id, ``latest`` (any kind), ``latest-nightly``, or
    ``baseline`` (what the next nightly would be compared with: pinned, else the last passing nightly)."""
    from farm.store.results import ResultsError

    if ref == "latest":
        run = store.latest_run()
        if run is None:
            raise FarmUsageError("no runs in the results database yet")
        return run
    if ref == "latest-nightly":
        run = store.latest_run("nightly")
        if run is None:
            raise FarmUsageError("no nightly runs in the results database yet")
        return run
    if ref == "baseline":
        pinned = store.pinned_baseline()
        if pinned is not None:
            try:
                return store.run(pinned)
            except ResultsError:
                raise FarmUsageError(f"the pinned baseline, run {pinned}, is not in the results database "
                                     f"(farm baseline unpin)") from None
        run = store.last_passing_run("nightly")
        if run is None:
            raise FarmUsageError("no baseline: no nightly has passed yet and none is pinned (farm baseline pin RUN)")
        return run
    try:
        run_id = int(ref)
    except ValueError:
        raise FarmUsageError(f"{ref!r} is not a run: expected {RUN_REFS}") from None
    try:
        return store.run(run_id)
    except ResultsError as exc:
        raise FarmUsageError(str(exc)) from None


# --------------------------------------------------------------------------- the cluster (farm/scale)
def scheduler_option(fn: Any) -> Any:
    """``--scheduler ADDRESS`` on the commands that run boards on a Dask cluster."""
    return click.option("--scheduler", "scheduler", metavar="ADDRESS", default=None,
                        help="Dask scheduler to run the jobs on: tcp://host:8786 or tls://host:8786 (a lab), "
                             "'local' (a local cluster: every board at once) or 'in-process' (one board after "
                             "the other). Default: $FARM_SCHEDULER, else the inventory's cluster.scheduler, "
                             "else local.")(fn)


def resolve_scheduler(given: str | None, inventory: Any, default: str | None = None) -> str:
    """The scheduler a command uses: ``--scheduler``, else $FARM_SCHEDULER, else the inventory's
    ``cluster.scheduler``, else ``default`` (``local``: a local cluster)."""
    import os

    from farm.scale.cluster import LOCAL, SCHEDULER_ENV

    cluster = getattr(inventory, "cluster", None)
    return (given or os.environ.get(SCHEDULER_ENV) or (cluster.scheduler if cluster else None) or default
            or LOCAL)
