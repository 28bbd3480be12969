"""Does a build fit its device: flash and RAM of the ELF against the device's.

Two ways to find out, one sentence: the sizes of a linked ELF (:func:`check_fits`),
or the linker's own refusal in a build log (:func:`linker_overflow`), which
farm.build.prepare turns into :class:`DoesNotFit` instead of a build error.
Either way the sentence names the bytes needed and available.

On AVR the model's constants live in program memory as GCC's ``__flash`` (read with
LPM, farm/firmware/lib/kernels/include/tf_types.h), which reaches only the low 64 KiB
of flash: :func:`check_fits` also refuses an AVR ELF whose program-memory data ends
above that, naming the model and the bytes (:func:`flash_data_end`). RAM is what the
ELF puts in SRAM (.data, .bss; the weights are no longer there).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

#: what GCC's __flash (LPM with the 16-bit Z pointer) reaches on AVR
AVR_FLASH_DATA_REACH = 64 * 1024


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
    reach = _flash_data_reach(device, fw)
    if reach:
        problems.append(reach)
    if problems:
        raise DoesNotFit("; ".join(problems))


def flash_data_end(elf: Path) -> tuple[int, int] | None:
    """For an AVR ELF: (end address, bytes) of the data objects in program memory (the
    .progmem data that avr-libc's linker script puts first in .text: the model's
    __flash constants, avr-libc's own tables); None for another architecture or an ELF
    without symbols."""
    with Path(elf).open("rb") as fh:
        f = ELFFile(fh)
        if f["e_machine"] != "EM_AVR":
            return None
        text = f.get_section_by_name(".text")
        table = f.get_section_by_name(".symtab")
        if text is None or not isinstance(table, SymbolTableSection):
            return None
        index = next(i for i, sec in enumerate(f.iter_sections()) if sec.name == ".text")
        objects = [(int(sym["st_value"]), int(sym["st_size"])) for sym in table.iter_symbols()
                   if sym["st_info"]["type"] == "STT_OBJECT" and sym["st_shndx"] == index and sym["st_size"]]
    if not objects:
        return 0, 0
    return max(start + size for start, size in objects), sum(size for _, size in objects)


def _model_name(fw: Any) -> str:
    header = getattr(getattr(fw, "generated", None), "header", None)
    if header is not None and Path(header).is_file():
        found = re.search(r'#define MODEL_NAME "([^"]*)"', Path(header).read_text())
        if found:
            return found.group(1)
    return "the model"


def _flash_data_reach(device: Any, fw: Any) -> str | None:
    """The sentence for an AVR build whose program-memory constants end above 64 KiB."""
    elf = getattr(getattr(fw, "build", None), "elf", None)
    if elf is None or not Path(elf).is_file():
        return None
    found = flash_data_end(Path(elf))
    if found is None or found[0] <= AVR_FLASH_DATA_REACH:
        return None
    end, size = found
    return (f"flash data: model {_model_name(fw)}'s constants ({size} bytes in program memory) end at byte "
            f"{end} of {device.name}'s flash, but __flash (LPM) reaches only the low 64 KiB "
            f"({AVR_FLASH_DATA_REACH} bytes)")


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
