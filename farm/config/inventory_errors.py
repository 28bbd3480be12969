"""The inventory's error wording: every problem as ``file:line: field.path: what was expected``.

:class:`InventoryError` holds all the problems of one file (:class:`InventoryIssue`,
one a line, sorted by line); the functions here turn what went wrong -- a YAML
syntax error, a duplicate key, a pydantic error, a cross-field rule
(:class:`CrossFieldError`) -- into one issue with its line and a message that says
what was expected and what was given.
"""

from __future__ import annotations

import difflib
import enum
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import Node

from farm.config.yaml_lines import Loc, dotted, duplicate_keys, line_of

MAX_SHOWN = 20


class CrossFieldError(ValueError):
    """Raised by the cross-field validators: each problem names the field at fault,
    relative to the model that raised it, so the loader can point at its line."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{dotted(loc) or '(entry)'}: {msg}" for loc, msg in problems))


@dataclass(frozen=True)
class InventoryIssue:
    line: int | None  # 1-based; None when the file could not be read at all
    field: str  # dotted path, e.g. devices[1].emulator.machine
    message: str
    column: int | None = None


class InventoryError(ValueError):
    """Everything wrong with one inventory file, one problem per line."""

    def __init__(self, path: Path, issues: list[InventoryIssue]) -> None:
        self.path = path
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.column or 0))
        super().__init__(self._format())

    def _format(self) -> str:
        count = len(self.issues)
        lines = [f"{self.path}: invalid inventory, {count} problem{'s' if count != 1 else ''}:"]
        for issue in self.issues[:MAX_SHOWN]:
            where = str(self.path)
            if issue.line is not None:
                where += f":{issue.line}"
                if issue.column is not None:
                    where += f":{issue.column}"
            field = f" {issue.field}:" if issue.field else ""
            lines.append(f"  {where}:{field} {issue.message}")
        if count > MAX_SHOWN:
            lines.append(f"  ... and {count - MAX_SHOWN} more")
        return "\n".join(lines)


def not_utf8_issue(exc: UnicodeDecodeError) -> InventoryIssue:
    return InventoryIssue(None, "", f"not UTF-8 text: {exc}")


def empty_file_issue() -> InventoryIssue:
    return InventoryIssue(1, "", "the file is empty; expected 'devices:' with at least one device")


def yaml_issue(exc: yaml.YAMLError) -> InventoryIssue:
    """A YAML syntax error at its line and column, with its context."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    message = f"YAML syntax error: {problem}"
    if context:
        message += f" ({context}"
        if context_mark is not None:
            message += f" at line {context_mark.line + 1}"
        message += ")"
    if mark is None:
        return InventoryIssue(None, "", message)
    return InventoryIssue(mark.line + 1, "", message, column=mark.column + 1)


def duplicate_key_issues(root: Node | None) -> list[InventoryIssue]:
    """PyYAML silently keeps the last of two equal keys; an inventory must not."""
    return [
        InventoryIssue(d.line, dotted(d.loc), f"duplicate key {d.key!r} (first at line {d.first_line})")
        for d in duplicate_keys(root)
    ]


def issues_from_validation(
    exc: ValidationError, root: Node | None, data: Any, schema: type[BaseModel]
) -> list[InventoryIssue]:
    """Every error pydantic found in ``data`` (validated as ``schema``), at its line."""
    issues = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, CrossFieldError):
            for sub_loc, message in cause.problems:
                issues.append(_issue(root, data, (*loc, *sub_loc), message))
        else:
            issues.append(_issue(root, data, loc, describe(error, loc, schema)))
    return issues


def _issue(root: Node | None, data: Any, loc: Loc, message: str) -> InventoryIssue:
    name = _device_name(data, loc)
    if name is not None:
        message += f" (device {name})"
    return InventoryIssue(line_of(root, loc), dotted(loc), message)


def _device_name(data: Any, loc: Loc) -> str | None:
    if len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int) and isinstance(data, dict):
        devices = data.get("devices")
        if isinstance(devices, list) and loc[1] < len(devices) and isinstance(devices[loc[1]], dict):
            name = devices[loc[1]].get("name")
            return name if isinstance(name, str) else None
    return None


def describe(error: Any, loc: Loc, schema: type[BaseModel]) -> str:
    """One pydantic error as the inventory says it: what was expected, what was given,
    a close match for a misspelt key or enum value."""
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        expected = _describe_type(_annotation_at(schema, loc))
        return f"required field {loc[-1]!r} is missing" + (f"; expected {expected}" if expected else "")
    if kind == "extra_forbidden":
        return _unknown_key(schema, loc)
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    else:
        message = str(error["msg"]).replace("Input should be", "expected")
        message = message.replace("a valid dictionary or instance of", "a mapping for").replace(
            "a valid dictionary", "a mapping"
        )
        for bound in ("greater", "less"):
            message = message.replace(f"expected {bound} than", f"expected a number {bound} than")
        if "expected" not in message:
            message = f"expected {_describe_type(_annotation_at(schema, loc)) or 'a valid value'} ({message})"
        message += f"; got {_show(value)}"
    if kind == "enum" and isinstance(value, str):
        options = [m.value for m in _enum_at(schema, loc) or []]
        close = difflib.get_close_matches(value, options, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
    if kind in ("string_type", "enum") and isinstance(value, bool | int | float):
        message += " (quote the value in YAML: unquoted numbers and yes/no/on/off are not strings)"
    return message


def _unknown_key(schema: type[BaseModel], loc: Loc) -> str:
    key = str(loc[-1])
    model = _annotation_at(schema, loc[:-1])
    allowed = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    message = f"unknown key {key!r}"
    if key.lower() in ("password", "passphrase", "secret", "token", "private_key"):
        return message + ": no secrets in the inventory; use key_file or the SSH agent"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    if allowed:
        message += f"; expected one of: {', '.join(allowed)}"
    return message


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the type that matters."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _annotation_at(schema: type[BaseModel], loc: Loc) -> Any:
    """The (unwrapped) type the schema expects at ``loc``; None when unknown."""
    current: Any = schema
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif origin is dict and isinstance(part, str):
            current = typing.get_args(current)[0 if part == "[key]" else 1]
        elif origin in (list, tuple) and isinstance(part, int):
            current = typing.get_args(current)[0]
        else:
            return None
    return _unwrap(current)


def _enum_at(schema: type[BaseModel], loc: Loc) -> type[enum.Enum] | None:
    annotation = _annotation_at(schema, loc)
    return annotation if isinstance(annotation, type) and issubclass(annotation, enum.Enum) else None


def _describe_type(annotation: Any) -> str:
    if annotation is None:
        return ""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping with keys {', '.join(annotation.model_fields)}"
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a file path"}.get(
        annotation, ""
    )
