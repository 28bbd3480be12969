"""Flash and RAM an ELF needs, read with pyelftools (``size`` semantics).

flash = every allocated section with contents (code, constants, the load image of
.data); RAM = every allocated writable section (.data, .bss and the fixed .stack).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile


@dataclass(frozen=True)
class ElfSizes:
    flash_bytes: int
    ram_bytes: int
    sections: dict[str, int]


def elf_sizes(path: Path) -> ElfSizes:
    flash = ram = 0
    sections: dict[str, int] = {}
    with path.open("rb") as fh:
        for section in ELFFile(fh).iter_sections():
            flags = section["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            size = int(section["sh_size"])
            sections[section.name] = size
            if section["sh_type"] != "SHT_NOBITS":
                flash += size
            if flags & SH_FLAGS.SHF_WRITE:
                ram += size
    return ElfSizes(flash, ram, sections)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
