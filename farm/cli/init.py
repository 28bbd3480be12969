"""``farm init``: a working project in the current directory (farm.project.init)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from farm.cli.common import FarmUsageError, farm_options, out


@click.command("init")
@farm_options(activate=False)  # the project is what init writes: an existing one is not read
@click.option("--force", is_flag=True, help="Overwrite files that are there with other content.")
@click.option("--directory", "-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Write the project here instead of the current directory.")
def init(force: bool, directory: Path) -> None:
    """Start a project here: tinyfarm.yaml, devices.yaml, one HIL test, .gitignore.

    \b
    tinyfarm.yaml           includes the zoo's sine (with budgets) and a commented
                            template of your own model: source, data, metric, budgets
    devices.yaml            the emulated boards (Arm Cortex-M4F, Cortex-M3, RISC-V)
    tests/hil/test_my_models.py   a HIL test written with `device` and `measure`
    .gitignore              .farm/ (the state folder: caches, builds, results.db)

    A file already there with other content is not overwritten (nothing is written,
    exit 2) unless --force; a file with the same content is left as it is, so a second
    `farm init` changes nothing.
    """
    from farm.project.init import InitConflict, write_project

    try:
        result = write_project(directory, force=force)
    except InitConflict as exc:
        raise FarmUsageError(str(exc)) from None
    except OSError as exc:
        raise FarmUsageError(f"{directory}: cannot write the project: {exc}") from None
    where = directory.resolve()
    for name in result.written:
        out.print(f"wrote      {escape(str(where / name))}")
    for name in result.overwritten:
        out.print(f"updated    {escape(str(where / name))}")
    for name in result.unchanged:
        out.print(f"unchanged  {escape(str(where / name))}")
    if not result.changed:
        out.print("nothing to do: the project is already there")
    cd = "" if where == Path.cwd().resolve() else f"cd {escape(str(directory))} && "
    out.print("\nnext:\n"
              f"  {cd}farm models          the project's models, their sources and variants\n"
              f"  {cd}farm nightly         the HIL suite and tests/hil on every board of devices.yaml\n"
              "  edit tinyfarm.yaml   declare your own model (the commented template), then farm nightly")
