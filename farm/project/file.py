"""``tinyfarm.yaml``: the schema of a project file, its loader, and the loaded ``Project``.

    zoo: [sine]                 # zoo examples the project includes (none by default)
    tests: [tests/hil]          # the project's own HIL tests (run by ``farm nightly``)
    models:
      my-model:
        source: {keras: models/my_model.keras}   # or saved_model / tflite: {variant: file} / recipe / zoo
        data: {test: data/test.npz, representative: data/rep.npy}
        metric: accuracy
        variants: [float32, int8]
        measure: {windows: 3}
        budgets: {latency_us: 5000, devices: {qemu-rv32: {latency_us: 40000}}}

Every key is checked (pydantic, ``extra="forbid"``); every problem is reported as
``file:line: field.path: what was expected`` (the wording of devices.yaml's errors,
farm.config.inventory_errors), all problems of a file at once. Paths are relative to the
project file's folder. The data files are checked by farm.models.sources.check_project_model
(shapes, dtypes, sample counts; no TensorFlow), its errors placed at their line here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, \
    model_validator
from yaml.nodes import Node

from farm.config.inventory_errors import MAX_SHOWN, CrossFieldError, InventoryIssue, duplicate_key_issues, \
    issues_from_validation, not_utf8_issue, yaml_issue
from farm.config.variants import VARIANTS
from farm.config.yaml_lines import Loc, dotted, line_of, parse_yaml

#: the file a project is found as, in the current directory
PROJECT_FILE_NAME = "tinyfarm.yaml"
#: the source kinds of a model entry, exactly one of which is given
SOURCE_KINDS = ("keras", "saved_model", "tflite", "recipe", "zoo")
#: a model name: used in test ids, file names and on the command line
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------- field types
def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number; got {value!r} (bool)")
    return value


def _whole_as_int(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


#: a budget figure: a number >= 0, kept an int when it is whole (bytes, counts)
Limit = Annotated[float, BeforeValidator(_no_bool), Field(ge=0), AfterValidator(_whole_as_int)]


def _close(value: str, options: Collection[str]) -> str:
    match = difflib.get_close_matches(value, list(options), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown_variant(variant: Any) -> str:
    """``unknown variant 'int9'; did you mean 'int8'? expected one of: float32, ...``"""
    return (f"unknown variant {variant!r}{_close(str(variant), VARIANTS)}; "
            f"expected one of: {', '.join(VARIANTS)}")


# --------------------------------------------------------------------------- budgets
class BudgetLimits(BaseModel):
    """The limits of one model (or one of its variants, or one device): every key optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_us: Limit | None = None  # max, µs at the board's clock (count / clock_hz)
    latency_count: Limit | None = None  # max, in the board's unit (instructions / cycles)
    energy_uj: Limit | None = None  # max per inference
    accuracy_min: Limit | None = None  # min of the model's metric on the device
    accuracy_drop_max: Limit | None = None  # max drop of the metric against float32 on the same board
    flash_bytes_max: Limit | None = None
    ram_bytes_max: Limit | None = None
    portable: bool | None = None  # float-free on FPU-less boards (int8 builds), preflight portable

    def given(self) -> dict[str, Any]:
        """The limits this block sets (keys with a value)."""
        return {k: v for k in BudgetLimits.model_fields if (v := getattr(self, k)) is not None}


class Budgets(BudgetLimits):
    """A model's ``budgets:`` block: its limits, with per-variant and per-device overrides
    (device > variant > model)."""

    variants: dict[str, BudgetLimits] = Field(default_factory=dict)
    devices: dict[str, BudgetLimits] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_variants(self) -> Budgets:
        problems: list[tuple[Loc, str]] = [(("variants", v), unknown_variant(v)) for v in self.variants
                                           if v not in VARIANTS]
        if problems:
            raise CrossFieldError(problems)
        return self

    def limits_for(self, variant: str, device: str) -> BudgetLimits:
        """The limits that hold for (variant, device): the model's, overridden by the variant's,
        overridden by the device's."""
        merged = BudgetLimits.given(self)
        for override in (self.variants.get(variant), self.devices.get(device)):
            if override is not None:
                merged.update(override.given())
        return BudgetLimits(**merged)


# --------------------------------------------------------------------------- a model entry
class SourceEntry(BaseModel):
    """Where a model comes from: exactly one of the keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keras: str | None = None  # a .keras or .h5 file
    saved_model: str | None = None  # a SavedModel directory
    tflite: dict[str, str] | None = None  # variant -> ready .tflite file
    recipe: str | None = None  # an entry point in group "tinyfarm.recipes"
    zoo: str | None = None  # one of the zoo's examples (with this entry's variants, run rules, budgets)

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceEntry:
        given = [k for k in SOURCE_KINDS if getattr(self, k) is not None]
        if not given:
            raise CrossFieldError([((), f"expected exactly one of: {', '.join(SOURCE_KINDS)}")])
        problems: list[tuple[Loc, str]] = []
        if len(given) > 1:
            problems.append(((given[1],), f"a model has exactly one source; got {' and '.join(given)}"))
        if self.tflite is not None:
            if not self.tflite:
                problems.append((("tflite",), "expected at least one variant: file, e.g. {int8: model_int8.tflite}"))
            problems += [(("tflite", v), unknown_variant(v)) for v in self.tflite if v not in VARIANTS]
        if problems:
            raise CrossFieldError(problems)
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SOURCE_KINDS if getattr(self, k) is not None)


class DataEntry(BaseModel):
    """A model's data: files (``test`` .npz with x and y, or .npy + ``labels``), or a loader."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test: str | None = None
    labels: str | None = None
    representative: str | None = None
    loader: str | None = None  # "module:function" returning {"test": x, "labels": y, "representative": r}

    @model_validator(mode="after")
    def _files_or_loader(self) -> DataEntry:
        problems: list[tuple[Loc, str]] = []
        if self.loader is not None:
            problems += [((k,), "give either data files or a loader, not both")
                         for k in ("test", "labels", "representative") if getattr(self, k) is not None]
            if ":" not in self.loader:
                problems.append((("loader",), f"expected 'module:function'; got {self.loader!r}"))
        elif self.test is None:
            problems.append(((), "expected 'test' (inputs and labels: an .npz with arrays x and y, or an .npy "
                                 "with 'labels') or 'loader'"))
        if problems:
            raise CrossFieldError(problems)
        return self


class ModelEntry(BaseModel):
    """One model of the project: its source, data, metric, variants, run rules and budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceEntry
    data: DataEntry | None = None
    metric: str = "accuracy"  # accuracy | top-K | mae | mse | roc-auc | "module:function"
    variants: list[str] | None = None  # default: the tflite source's, else all four
    measure: dict[str, Annotated[float, BeforeValidator(_no_bool), Field(gt=0), AfterValidator(_whole_as_int)]] \
        = Field(default_factory=dict)
    budgets: Budgets | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        from farm.models.registry import MEASURE_KEYS

        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        for i, v in enumerate(self.variants or ()):
            if v not in VARIANTS:
                problems.append((("variants", i), unknown_variant(v)))
            elif v in seen:
                problems.append((("variants", i), f"variant {v!r} is listed twice"))
            elif self.source.tflite is not None and v not in self.source.tflite:
                problems.append((("variants", i), f"no file for variant {v!r} in source.tflite "
                                                  f"(it has: {', '.join(self.source.tflite)})"))
            seen.add(v)
        if self.variants == []:
            problems.append((("variants",), f"expected at least one of: {', '.join(VARIANTS)}"))
        problems += [(("measure", k), f"unknown key {k!r}{_close(k, MEASURE_KEYS)}; expected one of: "
                                      f"{', '.join(MEASURE_KEYS)}") for k in self.measure if k not in MEASURE_KEYS]
        if self.budgets is not None:
            declared = self.declared_variants()
            problems += [(("budgets", "variants", v), f"variant {v!r} is not one of this model's variants "
                                                      f"({', '.join(declared)})")
                         for v in self.budgets.variants if v in VARIANTS and v not in declared]
        if self.source.zoo is not None and self.data is not None:
            problems.append((("data",), "a zoo example brings its own data; remove 'data'"))
        if problems:
            raise CrossFieldError(problems)
        return self

    def declared_variants(self) -> tuple[str, ...]:
        """The variants measured: ``variants``, else the tflite source's, else all four (seed order)."""
        if self.variants:
            return tuple(v for v in VARIANTS if v in self.variants)
        if self.source.tflite is not None:
            return tuple(v for v in VARIANTS if v in self.source.tflite)
        return VARIANTS


class ProjectFile(BaseModel):
    """The whole ``tinyfarm.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zoo: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=list)
    models: dict[str, ModelEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> ProjectFile:
        zoo = zoo_models()
        problems: list[tuple[Loc, str]] = []
        for i, name in enumerate(self.zoo):
            if name not in zoo:
                problems.append((("zoo", i), f"unknown zoo example {name!r}{_close(name, zoo)}; "
                                             f"the zoo has: {', '.join(zoo)}"))
        for name, entry in self.models.items():
            if not MODEL_NAME.match(name) or name.endswith(".tflite"):
                problems.append((("models", name), f"model name {name!r}: use letters, digits, '.', '_' and '-' "
                                                   f"(starting with a letter or digit), not a file name"))
            elif entry.source.zoo is not None:
                if entry.source.zoo not in zoo:
                    problems.append((("models", name, "source", "zoo"), f"unknown zoo example "
                                     f"{entry.source.zoo!r}{_close(entry.source.zoo, zoo)}; the zoo has: "
                                     f"{', '.join(zoo)}"))
            elif name in zoo:
                problems.append((("models", name), f"{name!r} is a zoo example's name; name your model otherwise, "
                                                   f"or declare the example with source: {{zoo: {name}}}"))
        if problems:
            raise CrossFieldError(problems)
        return self


def zoo_models() -> list[str]:
    """The zoo's examples: the recipes tinyfarm itself ships, one module each (farm/models/<name>.py)."""
    import farm.models
    from farm.models.registry import get_recipe, registered_models

    package = Path(farm.models.__file__).resolve().parent
    return [n for n in registered_models() if get_recipe(n).source_file.resolve() == package / f"{n}.py"]


# --------------------------------------------------------------------------- the loaded project
@dataclass(frozen=True)
class Project:
    """A loaded, validated project file."""

    path: Path  # the project file, absolute
    models: dict[str, ModelEntry]  # the project's models (a zoo example declared here too: source: {zoo: ...})
    zoo: tuple[str, ...]  # the zoo examples ``zoo:`` includes as they are (not declared under models:)
    tests: list[Path]  # the project's own HIL test folders/files, absolute
    project_models: tuple[Any, ...] = field(default=(), repr=False)  # farm.models.sources.ProjectModel

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def model_names(self) -> list[str]:
        """The project's own models, then the zoo examples it includes."""
        return [*self.models, *self.zoo]

    def budgets_of(self, model: str) -> Budgets | None:
        entry = self.models.get(model)
        return entry.budgets if entry is not None else None

    def variants_of(self, model: str) -> tuple[str, ...]:
        entry = self.models.get(model)
        return entry.declared_variants() if entry is not None else VARIANTS


class ProjectError(ValueError):
    """Everything wrong with one project file, one problem a line (``file:line: field: message``)."""

    def __init__(self, path: Path, issues: list[InventoryIssue]) -> None:
        self.path = path
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.column or 0))
        super().__init__(self._format())

    def _format(self) -> str:
        lines = [f"{self._where(i)}:{f' {i.field}:' if i.field else ''} {i.message}" for i in self.issues[:MAX_SHOWN]]
        if len(self.issues) > MAX_SHOWN:
            lines.append(f"... and {len(self.issues) - MAX_SHOWN} more")
        if len(lines) == 1:
            return lines[0]
        return f"{self.path}: invalid project file, {len(self.issues)} problems:\n" + "\n".join(f"  {x}" for x in lines)

    def _where(self, issue: InventoryIssue) -> str:
        where = str(self.path)
        if issue.line is not None:
            where += f":{issue.line}"
            if issue.column is not None:
                where += f":{issue.column}"
        return where


def load_project(path: Path, device_names: Collection[str] | None = None) -> Project:
    """Parse and validate the project file at ``path``: the schema, the files it names, the
    data (farm.models.sources.check_project_model), and, when ``device_names`` (the inventory)
    is given, the devices its budgets name. Raises :class:`ProjectError` listing every problem;
    a missing file raises :class:`FileNotFoundError`."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError(path, [not_utf8_issue(exc)]) from None
    try:
        root, data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ProjectError(path, [yaml_issue(exc)]) from None
    issues = duplicate_key_issues(root)
    if data is None:
        data = {}  # an empty project: the zoo examples it includes are none
    if not isinstance(data, dict):
        raise ProjectError(path, [InventoryIssue(line_of(root, ()), "", "expected a mapping with keys "
                                                 f"{', '.join(ProjectFile.model_fields)}")])
    try:
        parsed = ProjectFile.model_validate(data)
    except ValidationError as exc:
        raise ProjectError(path, issues + issues_from_validation(exc, root, data, ProjectFile)) from None
    base = path.parent
    problems = _path_problems(parsed, base) + _device_problems(parsed, device_names)
    issues += [InventoryIssue(line_of(root, loc), dotted(loc), message) for loc, message in problems]
    if issues:
        raise ProjectError(path, issues)
    project_models = tuple(_project_model(name, entry, base, path) for name, entry in parsed.models.items())
    issues += _data_issues(project_models, root)
    if issues:
        raise ProjectError(path, issues)
    zoo = tuple(n for n in dict.fromkeys(parsed.zoo) if n not in parsed.models)
    return Project(path=path, models=dict(parsed.models), zoo=zoo, tests=[base / t for t in parsed.tests],
                   project_models=project_models)


# --------------------------------------------------------------------------- checks after the schema
def _path_problems(parsed: ProjectFile, base: Path) -> list[tuple[Loc, str]]:
    """The test folders the project names must be there (relative to the project's folder);
    the models' files are farm.models.sources.check_project_model's to check."""
    return [(("tests", i), f"{test}: no such test folder or file (relative to {base})")
            for i, test in enumerate(parsed.tests) if not (base / test).exists()]


def _device_problems(parsed: ProjectFile, device_names: Collection[str] | None) -> list[tuple[Loc, str]]:
    if device_names is None:
        return []
    known = list(device_names)
    return [(("models", name, "budgets", "devices", device),
             f"device {device!r} is not in the inventory{_close(device, known)}; it has: {', '.join(known)}")
            for name, entry in parsed.models.items() if entry.budgets is not None
            for device in entry.budgets.devices if device not in known]


def _project_model(name: str, entry: ModelEntry, base: Path, origin: Path) -> Any:
    from farm.models.sources import DataFiles, ModelSource, ProjectModel

    src = entry.source
    source = ModelSource(keras=base / src.keras if src.keras else None,
                         saved_model=base / src.saved_model if src.saved_model else None,
                         tflite={v: base / f for v, f in src.tflite.items()} if src.tflite else None,
                         recipe=src.recipe, zoo=src.zoo)
    data = None
    if entry.data is not None:
        d = entry.data
        data = DataFiles(test=base / d.test if d.test else None, labels=base / d.labels if d.labels else None,
                         representative=base / d.representative if d.representative else None, loader=d.loader)
    return ProjectModel(name=name, source=source, data=data, metric=entry.metric, variants=entry.declared_variants(),
                        measure=dict(entry.measure), base_dir=base, origin=origin)


def _data_issues(project_models: tuple[Any, ...], root: Node | None) -> list[InventoryIssue]:
    """farm.models.sources' cheap checks of each model's files and data, at their line."""
    from farm.models.sources import ModelSourceError, check_project_model

    issues = []
    for model in project_models:
        try:
            check_project_model(model)
        except ModelSourceError as exc:
            loc: Loc = ("models", model.name, *exc.field)
            issues.append(InventoryIssue(line_of(root, loc), dotted(loc), str(exc)))
    return issues


def limits_summary(limits: Mapping[str, Any]) -> str:
    """``latency_us <= 5000, accuracy_min >= 0.9`` (how a budget block is shown to people)."""
    signs = {"accuracy_min": ">="}
    return ", ".join(f"{k} {signs.get(k, '<=') if k != 'portable' else '='} {v}" for k, v in limits.items())
