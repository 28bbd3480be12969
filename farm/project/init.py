"""What ``farm init`` writes into a directory: a working project.

    tinyfarm.yaml             the project file: the zoo's ``sine`` with budgets, and a commented
                              template of the team's own model entry, every field explained
    devices.yaml              the emulated boards (tinyfarm's default inventory)
    tests/hil/test_my_models.py   one HIL test written the way a team writes its own
    .gitignore                ``.farm/`` (the state folder) -- appended to an existing .gitignore

The templates are package data (farm/project/templates), so an installed tinyfarm writes
the same files as a checkout. A file that is there with other content is a conflict:
nothing is written unless ``force``; a file already there with the same content is left
as it is (so a second ``farm init`` changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

#: (file written, template) in the order they are written and listed
FILES: tuple[tuple[str, str], ...] = (
    ("tinyfarm.yaml", "tinyfarm.yaml.tmpl"),
    ("devices.yaml", "devices.yaml"),
    ("tests/hil/test_my_models.py", "test_my_models.py.tmpl"),
)
GITIGNORE = ".gitignore"
STATE_IGNORE = ".farm/"


def template(name: str) -> str:
    """The text of a template shipped in farm/project/templates."""
    return resources.files("farm.project").joinpath("templates", name).read_text(encoding="utf-8")


class InitConflict(RuntimeError):
    """Files that are there with other content (``farm init --force`` overwrites them)."""

    def __init__(self, target: Path, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        super().__init__(f"{target}: {', '.join(conflicts)} already there with other content; nothing written "
                         f"(farm init --force overwrites {'them' if len(conflicts) > 1 else 'it'})")


@dataclass
class InitResult:
    """What ``write_project`` did, file by file (paths relative to the target)."""

    target: Path
    written: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.overwritten)


def write_project(target: Path, *, force: bool = False) -> InitResult:
    """Write a new project into ``target`` (created when missing); raise :class:`InitConflict`
    before writing anything when a file is there with other content and not ``force``."""
    target = Path(target)
    wanted = [(name, template(source)) for name, source in FILES]
    conflicts = [name for name, text in wanted if (target / name).exists() and _read(target / name) != text]
    if conflicts and not force:
        raise InitConflict(target.resolve(), conflicts)
    result = InitResult(target)
    for name, text in wanted:
        path = target / name
        if path.exists() and _read(path) == text:
            result.unchanged.append(name)
            continue
        (result.overwritten if path.exists() else result.written).append(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _ignore_state(target / GITIGNORE, result)
    return result


def _ignore_state(path: Path, result: InitResult) -> None:
    """``.farm/`` in the project's .gitignore: a new file, or a line added to the team's own."""
    if not path.exists():
        path.write_text(template("gitignore.tmpl"), encoding="utf-8")
        result.written.append(GITIGNORE)
        return
    text = _read(path)
    if any(line.strip() in (STATE_IGNORE, STATE_IGNORE.rstrip("/"), "/" + STATE_IGNORE) for line in text.splitlines()):
        result.unchanged.append(GITIGNORE)
        return
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + STATE_IGNORE + "\n", encoding="utf-8")
    result.overwritten.append(GITIGNORE)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
