"""Does a build fit its device: flash and RAM of the ELF against the device's.

Two ways to find out, one sentence: the sizes of a linked ELF (:func:`check_fits`),
or the linker's own refusal in a build log (:func:`linker_overflow`), which
farm.build.prepare turns into :class:`DoesNotFit` instead of a build error.
Either way the sentence names the bytes needed and available.
"""

from __future__ import annotations

import re
from typing import Any, Protocol


class DoesNotFit(RuntimeError):
    """The ELF needs more flash or RAM than the device has."""


class FirmwareSizes(Protocol):
    """Flash and RAM a build needs (farm.build.prepare.PreparedFirmware has them)."""

    @property
    def flash_bytes(self) -> int: ...

    @property
    def ram_bytes(self) -> int: ...


def check_fits(device: Any, fw: FirmwareSizes) -> None:
    """Raises DoesNotFit naming the bytes needed and available of each region that is too small."""
    problems = []
    if fw.flash_bytes > device.flash_bytes:
        problems.append(f"flash: needs {fw.flash_bytes} bytes, {device.name} has {device.flash_bytes}")
    if fw.ram_bytes > device.ram_bytes:
        problems.append(f"RAM: needs {fw.ram_bytes} bytes, {device.name} has {device.ram_bytes}")
    if problems:
        raise DoesNotFit("; ".join(problems))


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def linker_overflow(log: str, device: Any) -> str | None:
    """The linker's "region `RAM' overflowed by N bytes" as a does-not-fit sentence."""
    found = {name: int(n) for name, n in _OVERFLOW.findall(log)}
    if not found:
        return None
    sizes = {"FLASH": ("flash", device.flash_bytes), "RAM": ("RAM", device.ram_bytes)}
    parts = []
    for region, over in found.items():
        what, have = sizes.get(region, (region, None))
        if have is not None:
            parts.append(f"{what}: needs {have + over} bytes, {device.name} has {have} (refused by the linker)")
        else:
            parts.append(f"{what}: {over} bytes too many (refused by the linker)")
    return "; ".join(parts)
