"""The board-driver types: what a driver hands back, and the decorator that registers one.

Plain types only; this module imports no driver. A driver is a context manager
factory ``driver(device, elf, log_dir)`` that brings the device up with the ELF and
yields a :class:`BoardConnection`; it registers itself under the kind of device it
reaches with ``@board_driver(kind)`` (``emulator:qemu``, ``serial``, ``ssh``), and
:func:`farm.board.registry.open_board` looks it up by that kind (labgrid's factory).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.board.session import Session
from farm.board.counts import CountConverter
from farm.store.status import Unit


@dataclass
class BoardConnection:
    """A board up and running the ELF: its protocol session, the identity the harness
    announced at boot, the unit its counts are in and how to turn its timer ticks into
    that unit, and the URL of its console."""

    session: Session
    identity: dict[str, str]
    unit: Unit
    convert: CountConverter
    transport_url: str


BoardDriver = Callable[[Any, Path, Path], AbstractContextManager[BoardConnection]]
_DRIVERS: dict[str, BoardDriver] = {}


def board_driver(kind: str) -> Callable[[BoardDriver], BoardDriver]:
    """Register the decorated driver for devices of ``kind``."""

    def register(fn: BoardDriver) -> BoardDriver:
        _DRIVERS[kind] = fn
        return fn

    return register


def registered_driver(kind: str) -> BoardDriver | None:
    """The driver registered for ``kind``, or None."""
    return _DRIVERS.get(kind)


def registered_kinds() -> list[str]:
    """The kinds that have a driver, sorted."""
    return sorted(_DRIVERS)
