"""The device inventory (``devices.yaml``): typed, validated, plain data.

An inventory declares SSH bench hosts once and a list of devices. Each device
carries a capability model (core, FPU, DSP, clock, flash/RAM), how to reach it
(an emulator, or a serial port that is local or on a declared host), how to
flash it, and which power monitor measures it. The models here only hold data:
transports, flashers and power monitors are separate drivers bound to them.

:func:`load_inventory` parses the YAML into a node tree (``yaml.compose``), so
every problem is reported as ``file:line: field.path: what was expected``. The
structure is checked by pydantic (unknown keys, types, enums, missing fields),
the cross-field rules (FPU/DSP allowed for the core, exactly one of emulator /
serial, host references, unique names, power-model parameters) by validators
that name the exact field at fault. All problems come back at once in a single
:class:`InventoryError`.
"""

from __future__ import annotations

import difflib
import enum
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[int | str, ...]

# --------------------------------------------------------------------------- capability tables


class Core(enum.StrEnum):
    CORTEX_M0 = "cortex-m0"
    CORTEX_M0PLUS = "cortex-m0plus"
    CORTEX_M3 = "cortex-m3"
    CORTEX_M4 = "cortex-m4"
    CORTEX_M7 = "cortex-m7"
    CORTEX_M23 = "cortex-m23"
    CORTEX_M33 = "cortex-m33"
    CORTEX_M55 = "cortex-m55"
    RV32IMC = "rv32imc"
    RV32IMAC = "rv32imac"
    RV32IMAFC = "rv32imafc"
    ESP32C3 = "esp32c3"


class Fpu(enum.StrEnum):
    NONE = "none"
    SP = "sp"  # single precision only (e.g. Cortex-M4F FPv4-SP, RISC-V F)
    DP = "dp"  # single and double precision (e.g. Cortex-M7 FPv5-D16)


@dataclass(frozen=True)
class CoreInfo:
    """What an ISA allows: ``fpu_options`` are the FPU configurations silicon with
    this core can have, ``dsp_possible`` whether it can have the DSP/SIMD extension."""

    arch: str  # armv6m | armv7m | armv7em | armv8m.base | armv8m.main | armv8.1m.main | rv32
    isa: str  # the ISA string a compiler targets (-march for RISC-V)
    fpu_options: tuple[Fpu, ...]
    dsp_possible: bool

    @property
    def family(self) -> Literal["arm", "riscv"]:
        return "riscv" if self.arch == "rv32" else "arm"


_NO_FPU = (Fpu.NONE,)

CORES: Mapping[Core, CoreInfo] = types.MappingProxyType(
    {
        Core.CORTEX_M0: CoreInfo("armv6m", "armv6-m", _NO_FPU, False),
        Core.CORTEX_M0PLUS: CoreInfo("armv6m", "armv6-m", _NO_FPU, False),
        Core.CORTEX_M3: CoreInfo("armv7m", "armv7-m", _NO_FPU, False),
        Core.CORTEX_M4: CoreInfo("armv7em", "armv7e-m", (Fpu.NONE, Fpu.SP), True),
        Core.CORTEX_M7: CoreInfo("armv7em", "armv7e-m", (Fpu.NONE, Fpu.SP, Fpu.DP), True),
        Core.CORTEX_M23: CoreInfo("armv8m.base", "armv8-m.base", _NO_FPU, False),
        Core.CORTEX_M33: CoreInfo("armv8m.main", "armv8-m.main", (Fpu.NONE, Fpu.SP), True),
        Core.CORTEX_M55: CoreInfo("armv8.1m.main", "armv8.1-m.main", (Fpu.NONE, Fpu.SP, Fpu.DP), True),
        Core.RV32IMC: CoreInfo("rv32", "rv32imc", _NO_FPU, False),
        Core.RV32IMAC: CoreInfo("rv32", "rv32imac", _NO_FPU, False),
        Core.RV32IMAFC: CoreInfo("rv32", "rv32imafc", (Fpu.SP,), False),
        Core.ESP32C3: CoreInfo("rv32", "rv32imc", _NO_FPU, False),
    }
)


class EmulatorKind(enum.StrEnum):
    QEMU = "qemu"


# The core each emulated machine runs. QEMU emulates every optional unit of these
# cores (FPU, DSP), so a device may declare any fpu/dsp its core allows; one that
# declares less gets a conservative build.
EMULATED_MACHINES: Mapping[EmulatorKind, Mapping[str, Core]] = types.MappingProxyType(
    {
        EmulatorKind.QEMU: {
            "mps2-an385": Core.CORTEX_M3,  # no FPU, no DSP
            "mps2-an386": Core.CORTEX_M4,  # FPv4-SP, DSP
            "mps2-an500": Core.CORTEX_M7,  # FPv5-D16 (dp), DSP
            "mps2-an505": Core.CORTEX_M33,  # FPv5-SP, DSP
            "sifive_e": Core.RV32IMAC,
        },
    }
)


class PowerKind(enum.StrEnum):
    MODEL = "model"  # datasheet current per MHz (no instrument)
    PPK2 = "ppk2"  # Nordic Power Profiler Kit II
    JOULESCOPE = "joulescope"


# --------------------------------------------------------------------------- field types


def _check_name(value: str) -> str:
    if not value or not (value[0].isalnum() and all(c.isalnum() or c in "._-" for c in value)):
        raise ValueError(
            f"expected a name of letters, digits, '.', '_' and '-' (starting with a letter or digit); got {value!r}"
        )
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a non-empty string")
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Text = Annotated[str, AfterValidator(_check_not_blank)]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
StrictBool = Annotated[bool, Strict()]


class CrossFieldError(ValueError):
    """Raised by the cross-field validators: each problem names the field at fault,
    relative to the model that raised it, so the loader can point at its line."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_dotted(loc) or '(entry)'}: {msg}" for loc, msg in problems))


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- resources


class Host(_Data):
    """An SSH bench host. Credentials come from ``key_file`` or the SSH agent."""

    address: Text
    port: Annotated[int, Strict(), Field(ge=1, le=65535)] = 22
    user: Text
    key_file: Path | None = None
    known_hosts: Path | None = None
    trust_on_first_use: StrictBool = False
    python: Text = "python3"  # runs the farm's agent there (needs pyserial)
    work_dir: Text = ".cache/tinyfarm"  # the agent and copied images; relative to the user's home

    @field_validator("key_file")
    @classmethod
    def _key_is_a_path(cls, value: Path | None) -> Path | None:
        if value is not None and ("BEGIN" in str(value) or "\n" in str(value)):
            raise ValueError("expected the path of a key file, not the key itself (no secrets in the inventory)")
        return value

    @property
    def key_path(self) -> Path | None:
        return self.key_file.expanduser() if self.key_file else None

    @property
    def known_hosts_path(self) -> Path | None:
        return self.known_hosts.expanduser() if self.known_hosts else None


class Emulator(_Data):
    kind: EmulatorKind
    machine: Text
    icount_shift: Annotated[int, Strict(), Field(ge=0, le=10)] = 0


class Serial(_Data):
    """A real board's serial port; ``host`` names a bench host when it is remote."""

    port: Text
    baud: PositiveInt = 115200
    host: Name | None = None


class Flash(_Data):
    """How firmware gets onto a real board (farm.board.flashing picks the flasher by ``protocol``).

    ``protocol`` is a PlatformIO upload_protocol (stlink, cmsis-dap, jlink, picotool,
    esptool, ...) run by ``pio run -t upload``, or ``qemu``: an emulated board exposed
    as a serial device, "flashed" by (re)starting QEMU with the ELF (``machine``,
    ``icount_shift``) -- the stand-in for a real board that the test suite uses."""

    protocol: Text
    probe_serial: Text | None = None
    machine: Text | None = None  # protocol qemu: the QEMU machine (-M)
    icount_shift: Annotated[int, Strict(), Field(ge=0, le=10)] | None = None  # protocol qemu


class Power(_Data):
    kind: PowerKind
    voltage: PositiveFloat
    ua_per_mhz: PositiveFloat | None = None  # model only
    port: Text | None = None  # ppk2 / joulescope: serial port or serial number
    # Checked by Device (with the other cross-field rules, so one pass reports them all).


class Device(_Data):
    name: Name
    core: Core
    fpu: Fpu
    dsp: StrictBool
    clock_hz: PositiveInt
    flash_bytes: PositiveInt
    ram_bytes: PositiveInt
    board: Text  # PlatformIO board id
    platform: Text | None = None  # PlatformIO dev-platform of a real board (ststm32, raspberrypi, ...)
    emulator: Emulator | None = None
    serial: Serial | None = None
    flash: Flash | None = None
    power: Power | None = None  # None: no energy figure for this device
    tags: tuple[Name, ...] = ()
    _bench_host: Host | None = PrivateAttr(default=None)

    @property
    def core_info(self) -> CoreInfo:
        return CORES[self.core]

    @property
    def is_emulated(self) -> bool:
        return self.emulator is not None

    @property
    def is_remote(self) -> bool:
        return self.serial is not None and self.serial.host is not None

    @property
    def host(self) -> str | None:
        """The bench host name, None for local and emulated devices."""
        return self.serial.host if self.serial is not None else None

    @property
    def unit(self) -> Literal["instructions", "cycles"]:
        """What the timer counts: emulators count executed instructions, silicon counts cycles."""
        return "instructions" if self.is_emulated or self.flashed_by_qemu else "cycles"

    @property
    def flashed_by_qemu(self) -> bool:
        """A serial device that is really an emulated board (flash protocol ``qemu``)."""
        return self.flash is not None and self.flash.protocol == "qemu"

    @property
    def bench_host(self) -> Host | None:
        """The declared host a remote device is attached to (set when the inventory is validated)."""
        return self._bench_host

    @property
    def has_fpu(self) -> bool:
        return self.fpu is not Fpu.NONE

    @model_validator(mode="after")
    def _consistent(self) -> Device:
        problems = self._capability_problems() + self._connection_problems() + self._power_problems()
        if problems:
            raise CrossFieldError(problems)
        return self

    def _capability_problems(self) -> list[tuple[Loc, str]]:
        info = CORES[self.core]
        problems: list[tuple[Loc, str]] = []
        what = f"{self.core} ({info.arch})"
        if self.fpu not in info.fpu_options:
            if info.fpu_options == _NO_FPU:
                problems.append((("fpu",), f"{what} has no FPU; expected fpu: none"))
            else:
                allowed = " or ".join(str(f) for f in info.fpu_options)
                problems.append((("fpu",), f"{what} can have fpu: {allowed}, not {self.fpu}"))
        if self.dsp and not info.dsp_possible:
            problems.append((("dsp",), f"{what} has no DSP/SIMD extension; expected dsp: false"))
        return problems

    def _connection_problems(self) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        if self.emulator is None and self.serial is None:
            problems.append(
                ((), "needs exactly one of 'emulator' (emulated board) or 'serial' (real board); it has neither")
            )
        elif self.emulator is not None and self.serial is not None:
            problems.append((("serial",), "needs exactly one of 'emulator' or 'serial'; it has both"))
        if self.emulator is not None:
            if self.flash is not None:
                problems.append(
                    (("flash",), "'flash' applies to real boards; an emulated board is loaded by its emulator")
                )
            problems += self._machine_problems(self.emulator)
        if self.flash is not None:
            problems += self._flash_problems(self.flash)
        return problems

    def _flash_problems(self, flash: Flash) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        if flash.protocol == "qemu":
            if flash.machine is None:
                problems.append((("flash",), "protocol qemu needs 'machine' (the QEMU machine, e.g. mps2-an385)"))
            else:
                problems += [(("flash", *loc[1:]), message) for loc, message in
                             self._machine_problems(Emulator(kind=EmulatorKind.QEMU, machine=flash.machine))]
            if flash.probe_serial is not None:
                problems.append((("flash", "probe_serial"), "protocol qemu has no probe; remove probe_serial"))
        else:
            for key in ("machine", "icount_shift"):
                if getattr(flash, key) is not None:
                    problems.append(((("flash", key)),
                                     f"'{key}' applies to protocol qemu only, not {flash.protocol}"))
        return problems

    def _power_problems(self) -> list[tuple[Loc, str]]:
        power = self.power
        if power is None:
            return []
        problems: list[tuple[Loc, str]] = []
        if power.kind is PowerKind.MODEL:
            if power.ua_per_mhz is None:
                problems.append((("power",), "kind: model needs ua_per_mhz (the datasheet run current in uA per MHz)"))
            if power.port is not None:
                problems.append(
                    (("power", "port"), "kind: model measures nothing; 'port' applies to ppk2 / joulescope")
                )
        else:
            if power.ua_per_mhz is not None:
                problems.append(
                    (
                        ("power", "ua_per_mhz"),
                        f"kind: {power.kind} measures current; ua_per_mhz applies to kind: model only",
                    )
                )
            if power.port is None:
                problems.append(
                    (("power",), f"kind: {power.kind} needs 'port' (the monitor's serial port or serial number)")
                )
        return problems

    def _machine_problems(self, emulator: Emulator) -> list[tuple[Loc, str]]:
        machines = EMULATED_MACHINES[emulator.kind]
        core = machines.get(emulator.machine)
        if core is None:
            known = ", ".join(sorted(machines))
            return [
                (
                    ("emulator", "machine"),
                    f"unknown {emulator.kind} machine {emulator.machine!r}; expected one of {known}",
                )
            ]
        if core is not self.core:
            return [
                (
                    ("emulator", "machine"),
                    f"{emulator.kind} {emulator.machine} emulates a {core}, but core is {self.core}",
                )
            ]
        return []


class UnknownDeviceError(KeyError):
    """``Inventory.device(name)`` for a name the inventory does not declare."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Inventory(_Data):
    hosts: dict[Name, Host] = Field(default_factory=dict)
    devices: list[Device] = Field(min_length=1)
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("hosts", mode="before")
    @classmethod
    def _empty_hosts(cls, value: Any) -> Any:
        return {} if value is None else value  # "hosts:" with every entry commented out

    @model_validator(mode="after")
    def _references(self) -> Inventory:
        problems: list[tuple[Loc, str]] = []
        first_index: dict[str, int] = {}
        for i, device in enumerate(self.devices):
            if device.name in first_index:
                problems.append(
                    (
                        ("devices", i, "name"),
                        f"duplicate device name {device.name!r} (first used by devices[{first_index[device.name]}])",
                    )
                )
            else:
                first_index[device.name] = i
            host = device.host
            if host is not None and host not in self.hosts:
                declared = (
                    f"declared: {', '.join(sorted(self.hosts))}" if self.hosts else "the file has no 'hosts' section"
                )
                problems.append(
                    (("devices", i, "serial", "host"), f"host {host!r} is not declared under 'hosts' ({declared})")
                )
        if problems:
            raise CrossFieldError(problems)
        for device in self.devices:
            if device.host is not None:
                device._bench_host = self.hosts[device.host]
        return self

    @property
    def source(self) -> Path | None:
        """The file this inventory was loaded from (None when built in code)."""
        return self._source

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.devices]

    def device(self, name: str) -> Device:
        for device in self.devices:
            if device.name == name:
                return device
        where = f" in {self._source}" if self._source else ""
        raise UnknownDeviceError(f"no device {name!r}{where}; known devices: {', '.join(self.names)}")

    def host_of(self, device: Device) -> Host | None:
        """The bench host a remote device is attached to; None for local and emulated ones."""
        return self.hosts[device.host] if device.host is not None else None


# --------------------------------------------------------------------------- loading and errors

MAX_SHOWN = 20


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


def load_inventory(path: Path) -> Inventory:
    """Parse and validate ``path``; raise :class:`InventoryError` listing every problem.

    A file that does not exist raises :class:`FileNotFoundError` (the caller knows
    which option named it)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(path, [InventoryIssue(None, "", f"not UTF-8 text: {exc}")]) from None
    root, data = _parse_yaml(path, text)
    issues = list(_duplicate_keys(root, ()))
    if data is None:
        issues.append(InventoryIssue(1, "", "the file is empty; expected 'devices:' with at least one device"))
        raise InventoryError(path, issues)
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        issues += _issues_from_validation(exc, root, data)
        raise InventoryError(path, issues) from None
    if issues:
        raise InventoryError(path, issues)
    inventory._source = path
    return inventory


def _parse_yaml(path: Path, text: str) -> tuple[Node | None, Any]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise InventoryError(path, [_yaml_issue(exc)]) from None
    finally:
        loader.dispose()
    return root, data


def _yaml_issue(exc: yaml.YAMLError) -> InventoryIssue:
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


def _duplicate_keys(node: Node | None, loc: Loc) -> Iterator[InventoryIssue]:
    """PyYAML silently keeps the last of two equal keys; an inventory must not."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    yield InventoryIssue(
                        line,
                        _dotted((*loc, key.value)),
                        f"duplicate key {key.value!r} (first at line {seen[key.value]})",
                    )
                else:
                    seen[key.value] = line
            yield from _duplicate_keys(value, (*loc, key.value if isinstance(key, ScalarNode) else "?"))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, i))


def _issues_from_validation(exc: ValidationError, root: Node | None, data: Any) -> list[InventoryIssue]:
    issues = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, CrossFieldError):
            for sub_loc, message in cause.problems:
                issues.append(_issue(root, data, (*loc, *sub_loc), message))
        else:
            issues.append(_issue(root, data, loc, _describe(error, loc)))
    return issues


def _issue(root: Node | None, data: Any, loc: Loc, message: str) -> InventoryIssue:
    name = _device_name(data, loc)
    if name is not None:
        message += f" (device {name})"
    return InventoryIssue(_line_of(root, loc), _dotted(loc), message)


def _device_name(data: Any, loc: Loc) -> str | None:
    if len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int) and isinstance(data, dict):
        devices = data.get("devices")
        if isinstance(devices, list) and loc[1] < len(devices) and isinstance(devices[loc[1]], dict):
            name = devices[loc[1]].get("name")
            return name if isinstance(name, str) else None
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(root: Node | None, loc: Loc) -> int:
    """The 1-based line of the deepest node of ``loc`` present in the YAML: the key's
    line for a mapping entry, the item's line for a list item. A missing field points
    at the entry that lacks it."""
    if root is None:
        return 1
    node: Node = root
    line: int = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode) and isinstance(part, str):
            entry = _lookup(node, part)
            if entry is None:
                break
            key, node = entry
            line = key.start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _lookup(node: MappingNode, key: str) -> tuple[Node, Node] | None:
    merged: list[Node] = []
    for key_node, value_node in reversed(node.value):  # the last duplicate wins, as in PyYAML
        if isinstance(key_node, ScalarNode):
            if key_node.value == key and key_node.tag != "tag:yaml.org,2002:merge":
                return key_node, value_node
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged += value_node.value if isinstance(value_node, SequenceNode) else [value_node]
    for source in merged:  # "<<: *defaults"
        if isinstance(source, MappingNode) and (entry := _lookup(source, key)) is not None:
            return entry
    return None


# --------------------------------------------------------------------------- error wording


def _describe(error: Any, loc: Loc) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        expected = _describe_type(_annotation_at(loc))
        return f"required field {loc[-1]!r} is missing" + (f"; expected {expected}" if expected else "")
    if kind == "extra_forbidden":
        return _unknown_key(loc)
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
            message = f"expected {_describe_type(_annotation_at(loc)) or 'a valid value'} ({message})"
        message += f"; got {_show(value)}"
    if kind == "enum" and isinstance(value, str):
        options = [m.value for m in _enum_at(loc) or []]
        close = difflib.get_close_matches(value, options, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
    if kind in ("string_type", "enum") and isinstance(value, bool | int | float):
        message += " (quote the value in YAML: unquoted numbers and yes/no/on/off are not strings)"
    return message


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    model = _annotation_at(loc[:-1])
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


def _annotation_at(loc: Loc) -> Any:
    """The (unwrapped) type the schema expects at ``loc``; None when unknown."""
    current: Any = Inventory
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


def _enum_at(loc: Loc) -> type[enum.Enum] | None:
    annotation = _annotation_at(loc)
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
