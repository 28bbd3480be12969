"""Regression thresholds: when a change between a run and its baseline fails the night.

The defaults below are the ones documented in ``farm-thresholds.toml`` at the root
of the repository. A thresholds file may set any of them, per section, and add
``[[override]]`` tables that apply narrower (or looser) values to the results of
some devices, models or variants::

    [count]
    emulated_fail_pct = 2.0

    [[override]]
    device = "qemu-rv32"          # match on any of device / model / variant
    [override.count]
    emulated_fail_pct = 0.5

Which file: ``--thresholds FILE``, else ``$FARM_THRESHOLDS``, else
``./farm-thresholds.toml`` when it exists, else the built-in defaults. Unknown
sections and keys are refused with the file and the key's path.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_FILE = "farm-thresholds.toml"


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountRule(_Section):
    """Count per inference (latency)."""

    #: emulator counts are deterministic: every change is reported; slower by more than this fails
    emulated_fail_pct: float = Field(2.0, ge=0)
    #: real boards (cycles): slower by more than this percentage ...
    board_fail_pct: float = Field(5.0, ge=0)
    #: ... and outside the noise band |median change| > k x 1.4826 x MAD of the timed windows (both runs)
    board_band_mads: float = Field(3.0, ge=0)


class EnergyRule(_Section):
    """Energy per inference. Modelled energy is count x constant: the count rule decides, changes are reported."""

    measured_fail_pct: float = Field(10.0, ge=0)


class AccuracyRule(_Section):
    """The task metric measured on the device (absolute thresholds)."""

    #: metric "accuracy" (higher is better): a drop by more than this fails (0.01 = one point)
    max_drop: float = Field(0.01, ge=0)
    #: error metrics such as "mae" (lower is better): growth by more than this fails
    max_error_increase: float = Field(0.005, ge=0)


class BitExactRule(_Section):
    """int8: fraction of outputs bit-exact with the tflite-micro reference."""

    max_drop: float = Field(0.0, ge=0)


class FloatErrorRule(_Section):
    """float32 / int8-weights / dynamic: max abs error against the host float reference
    (dynamic: tf.lite.Interpreter with BUILTIN_REF)."""

    max_increase: float = Field(1e-4, ge=0)


class FootprintRule(_Section):
    """Growth of the ELF's flash and RAM and of the model file (like twister's footprint check)."""

    flash_growth_pct: float = Field(5.0, ge=0)
    ram_growth_pct: float = Field(5.0, ge=0)
    model_size_growth_pct: float = Field(5.0, ge=0)


class Rules(_Section):
    count: CountRule = CountRule()
    energy: EnergyRule = EnergyRule()
    accuracy: AccuracyRule = AccuracyRule()
    bit_exact: BitExactRule = BitExactRule()
    float_error: FloatErrorRule = FloatErrorRule()
    footprint: FootprintRule = FootprintRule()


_SECTIONS = tuple(Rules.model_fields)


class _Override(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str | None = None
    model: str | None = None
    variant: str | None = None
    count: dict[str, Any] = {}
    energy: dict[str, Any] = {}
    accuracy: dict[str, Any] = {}
    bit_exact: dict[str, Any] = {}
    float_error: dict[str, Any] = {}
    footprint: dict[str, Any] = {}

    def matches(self, device: str, model: str, variant: str) -> bool:
        return all(want is None or want == have for want, have in
                   ((self.device, device), (self.model, model), (self.variant, variant)))


@dataclass(frozen=True)
class Thresholds:
    rules: Rules
    overrides: tuple[_Override, ...] = ()
    source: str = "built-in defaults"

    def for_result(self, device: str, model: str, variant: str) -> Rules:
        """The rules for one (device, model, variant): the file's, with matching overrides applied in order."""
        rules = self.rules
        for override in self.overrides:
            if override.matches(device, model, variant):
                rules = _apply(rules, override)
        return rules

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, **self.rules.model_dump(),
                "override": [o.model_dump(exclude_defaults=True) for o in self.overrides]}


def _apply(rules: Rules, override: _Override) -> Rules:
    data = rules.model_dump()
    for section in _SECTIONS:
        data[section].update(getattr(override, section))
    return Rules.model_validate(data)


def defaults() -> Thresholds:
    return Thresholds(Rules())


def find_thresholds_file(explicit: Path | None = None) -> Path | None:
    """``explicit``, else ``$FARM_THRESHOLDS``, else ``./farm-thresholds.toml`` if present."""
    if explicit is not None:
        return explicit
    env = os.environ.get("FARM_THRESHOLDS")
    if env:
        return Path(env)
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def load_thresholds(path: Path | None = None) -> Thresholds:
    """The thresholds of ``path`` (or of the file :func:`find_thresholds_file` finds, or the defaults)."""
    path = find_thresholds_file(path)
    if path is None:
        return defaults()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ThresholdsError(f"{path}: thresholds file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"{path}: not valid TOML: {exc}") from None
    overrides_raw = data.pop("override", [])
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        raise ThresholdsError(_describe(path, exc, ())) from None
    if not isinstance(overrides_raw, list):
        raise ThresholdsError(f"{path}: override: expected [[override]] tables")
    overrides = []
    for index, raw in enumerate(overrides_raw):
        where = ("override", index + 1)
        try:
            override = _Override.model_validate(raw)
            if override.device is None and override.model is None and override.variant is None:
                raise ThresholdsError(f"{path}: override #{index + 1}: name at least one of device, model, variant")
            _apply(rules, override)  # every key of the override must be a known threshold
        except ValidationError as exc:
            raise ThresholdsError(_describe(path, exc, where)) from None
        overrides.append(override)
    return Thresholds(rules, tuple(overrides), str(path))


def _describe(path: Path, exc: ValidationError, prefix: tuple[Any, ...]) -> str:
    problems = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in (*prefix, *error["loc"]))
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = error["msg"]
        problems.append(f"{path}: {loc}: {message}")
    return "\n".join(problems)
