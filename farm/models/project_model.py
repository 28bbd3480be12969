"""A project's model as plain data: where it comes from, its data, its metric and variants.

farm.project reads the project file (``tinyfarm.yaml``) into these frozen dataclasses and
hands them to farm.models (`farm.models.sources.register_project_models`); nothing here
reads a file or imports anything beyond the standard library.

Exactly one field of `ModelSource` is set:

    keras        a ``.keras`` / ``.h5`` file          converted with the seed's settings
    saved_model  a SavedModel directory               converted with ``from_saved_model``
    tflite       {variant: .tflite file}              used as they are
    recipe       an entry point of group ``tinyfarm.recipes`` (the user's own package)
    zoo          a zoo model (farm.models' own recipes)

`ModelSourceError.field` is the path of the offending field inside the model's entry
(``("data", "test")``, ``("source", "tflite", "int8")``, ``("metric",)``); its message is the
sentence alone: farm.project prefixes ``file:line: models.<name>.<field>: ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: the fields of ModelSource, in the order the project file documents them
SOURCE_KINDS: tuple[str, ...] = ("keras", "saved_model", "tflite", "recipe", "zoo")


class ModelSourceError(ValueError):
    """A model's source, data or metric that the farm cannot use; `field` locates it in the entry."""

    def __init__(self, message: str, field: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field: tuple[str, ...] = tuple(field)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: exactly one field set (module doc)."""

    keras: Path | None = None
    saved_model: Path | None = None
    tflite: Mapping[str, Path] | None = None
    recipe: str | None = None
    zoo: str | None = None

    @property
    def kind(self) -> str:
        """The one source kind that is set (ModelSourceError when none or several are)."""
        given = [name for name in SOURCE_KINDS if getattr(self, name) not in (None, {})]
        if len(given) != 1:
            raise ModelSourceError(
                f"a model needs exactly one source ({', '.join(SOURCE_KINDS)}); "
                + (f"got {' and '.join(given)}" if given else "got none"), ("source",))
        return given[0]


@dataclass(frozen=True)
class DataFiles:
    """A model's data: test inputs (+ labels), the representative set, or a loader function.

    ``test``: a ``.npz`` with arrays ``x`` (inputs) and ``y`` (labels / targets), or a ``.npy``
    of inputs with ``labels`` a ``.npy`` of labels. ``representative``: ``.npy`` (or ``.npz``
    with ``x``) calibration inputs, default the test inputs. ``loader``: ``module:function``
    returning ``{"test": x, "labels": y, "representative": r}`` (labels and representative
    optional), instead of files."""

    test: Path | None = None
    labels: Path | None = None
    representative: Path | None = None
    loader: str | None = None


@dataclass(frozen=True)
class ProjectModel:
    """One ``models:`` entry of a project file, its paths already absolute (or relative to `base_dir`)."""

    name: str
    source: ModelSource
    data: DataFiles | None
    metric: str
    variants: tuple[str, ...]
    measure: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    base_dir: Path = Path(".")
    origin: Path = Path("tinyfarm.yaml")  # the project file

    def path(self, value: Path | str) -> Path:
        """A path of the entry, resolved against the project file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


@dataclass(frozen=True)
class SizeRow:
    """One line of the seed's size table: what, how many bytes, and its size against the source's."""

    label: str
    bytes: int
    ratio_to_source: float | None
