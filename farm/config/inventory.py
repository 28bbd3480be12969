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

This module is the schema and the loader. What cores and emulated machines allow
is the capability table (:mod:`farm.config.capabilities`); the YAML node tree and
its line mapping are :mod:`farm.config.yaml_lines`; the wording of every problem is
:mod:`farm.config.inventory_errors`. Their public names are re-exported here.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

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

from farm.config.capabilities import (
    CORES,
    EMULATED_MACHINES,
    NO_FPU,
    Core,
    CoreInfo,
    EmulatorKind,
    Fpu,
    count_unit,
)
from farm.config.inventory_errors import (
    MAX_SHOWN,
    CrossFieldError,
    InventoryError,
    InventoryIssue,
    duplicate_key_issues,
    empty_file_issue,
    issues_from_validation,
    not_utf8_issue,
    yaml_issue,
)
from farm.config.yaml_lines import Loc, parse_yaml
from farm.store.status import Unit

__all__ = [  # the schema, and what its callers import from here
    "CORES", "MAX_SHOWN", "Core", "CoreInfo", "CrossFieldError", "Device", "Emulator", "EmulatorKind", "Flash",
    "Fpu", "Host", "Inventory", "InventoryError", "InventoryIssue", "Power", "PowerKind", "Serial",
    "UnknownDeviceError", "load_inventory",
]


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
    def unit(self) -> Unit:
        """What the timer counts: emulators count executed instructions, silicon counts cycles."""
        return count_unit(self)

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
            if info.fpu_options == NO_FPU:
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


class Cluster(_Data):
    """A lab cluster (farm/scale): the scheduler's address and the TLS files its members
    present -- paths only, relative to the inventory file; no certificate or key in it."""

    scheduler: Text | None = None  # e.g. tls://controller:8786 (the default of --scheduler)
    tls_ca_file: Path | None = None  # the lab's CA: only certificates it signed may join
    tls_cert: Path | None = None  # this member's certificate (PEM)
    tls_key: Path | None = None  # its private key (PEM file; never the key itself)

    @field_validator("tls_ca_file", "tls_cert", "tls_key")
    @classmethod
    def _a_path(cls, value: Path | None) -> Path | None:
        if value is not None and ("BEGIN" in str(value) or "\n" in str(value)):
            raise ValueError("expected the path of a PEM file, not its contents (no secrets in the inventory)")
        return value

    @model_validator(mode="after")
    def _all_or_none(self) -> Cluster:
        given = [n for n in ("tls_ca_file", "tls_cert", "tls_key") if getattr(self, n) is not None]
        if given and len(given) != 3:
            missing = [n for n in ("tls_ca_file", "tls_cert", "tls_key") if n not in given]
            raise ValueError(f"TLS needs tls_ca_file, tls_cert and tls_key together; missing: {', '.join(missing)}")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_ca_file is not None

    def resolved(self, base: Path | None) -> Cluster:
        """The same section with its file paths relative to ``base`` (the inventory's folder)."""
        if base is None:
            return self
        paths = {n: base / Path(getattr(self, n)).expanduser() for n in ("tls_ca_file", "tls_cert", "tls_key")
                 if getattr(self, n) is not None}
        return self.model_copy(update=paths)


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
    cluster: Cluster | None = None  # a lab cluster on Dask (farm/scale); None: a local cluster
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

    @property
    def cluster_config(self) -> Cluster | None:
        """The ``cluster:`` section, its file paths relative to the inventory file's folder."""
        if self.cluster is None:
            return None
        return self.cluster.resolved(self._source.parent if self._source else None)

    def host_of(self, device: Device) -> Host | None:
        """The bench host a remote device is attached to; None for local and emulated ones."""
        return self.hosts[device.host] if device.host is not None else None


# --------------------------------------------------------------------------- loading


def load_inventory(path: Path) -> Inventory:
    """Parse and validate ``path``; raise :class:`InventoryError` listing every problem.

    A file that does not exist raises :class:`FileNotFoundError` (the caller knows
    which option named it)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(path, [not_utf8_issue(exc)]) from None
    try:
        root, data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise InventoryError(path, [yaml_issue(exc)]) from None
    issues = duplicate_key_issues(root)
    if data is None:
        issues.append(empty_file_issue())
        raise InventoryError(path, issues)
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        issues += issues_from_validation(exc, root, data, Inventory)
        raise InventoryError(path, issues) from None
    if issues:
        raise InventoryError(path, issues)
    inventory._source = path
    return inventory
