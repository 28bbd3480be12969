"""The one reader of firmware ELFs (pyelftools): what the later stages need from a built ELF.

* the architecture and the float ABI of the header's flags (:func:`elf_header`);
* the function symbols and their address ranges, aliases merged, the function
  at an address and by name (:func:`read_functions`, :class:`ElfFunctions`);
* the function symbol at a fault's address (:func:`symbol_at`);
* the entry address, a symbol's value and a data object's words (the stack bound's root, the
  stack top, the Cortex-M vector table: :func:`entry_point`, :func:`symbol_address`,
  :func:`object_words`);
* flash and RAM the ELF needs, per allocated section (:func:`elf_sizes`), and the
  file's hash (:func:`file_sha256`).

Instructions are not decoded here: the toolchain's own disassembler does that
(farm.preflight.disassembly).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection


class ElfError(RuntimeError):
    """The ELF is not one the farm can read (another architecture, no symbol table)."""


# --------------------------------------------------------------------------- header


def _header(elf: ELFFile, path: Path) -> tuple[str, str]:
    machine = elf["e_machine"]
    flags = elf["e_flags"]
    if machine == "EM_ARM":
        return "arm", "hard" if flags & 0x400 else "soft"  # EF_ARM_ABI_FLOAT_HARD / _SOFT
    if machine == "EM_RISCV":
        return "riscv", {0: "soft", 2: "single", 4: "double", 6: "quad"}[flags & 0x6]  # EF_RISCV_FLOAT_ABI
    if machine == "EM_AVR":
        return "avr", "soft"  # no AVR has an FPU: float is avr-libc's soft-float
    raise ElfError(f"{path}: {machine} ELF; the portability checks know Arm, RISC-V and AVR")


def elf_header(path: Path) -> tuple[str, str]:
    """(arch, float ABI): ``arm`` with ``hard`` | ``soft`` (EABI flags), ``riscv`` with
    ``soft`` | ``single`` | ``double`` | ``quad``, or ``avr`` with ``soft``; ElfError for another machine."""
    with path.open("rb") as fh:
        return _header(ELFFile(fh), path)


# --------------------------------------------------------------------------- function symbols


@dataclass(frozen=True)
class FunctionSymbol:
    """One function symbol as the table holds it (Thumb bit cleared on Arm)."""

    name: str
    start: int
    size: int
    is_global: bool


def _function_symbols(elf: ELFFile, clear_thumb_bit: bool) -> Iterator[FunctionSymbol] | None:
    table = elf.get_section_by_name(".symtab")
    if not isinstance(table, SymbolTableSection):
        return None
    return (FunctionSymbol(sym.name, sym["st_value"] & ~1 if clear_thumb_bit else sym["st_value"],
                           int(sym["st_size"]), sym["st_info"]["bind"] == "STB_GLOBAL")
            for sym in table.iter_symbols() if sym["st_info"]["type"] == "STT_FUNC")


@dataclass(frozen=True)
class ElfFunction:
    """A function's address range and every name it goes by (global names first)."""

    start: int
    end: int
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass
class ElfFunctions:
    """An ELF's architecture, float ABI and functions, sorted by address."""

    path: Path
    arch: str  # "arm" | "riscv"
    float_abi: str
    functions: list[ElfFunction]
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts = [f.start for f in self.functions]
        self.by_start = {f.start: f for f in self.functions}

    def function_at(self, address: int) -> ElfFunction | None:
        """The function whose range holds ``address``, or None."""
        i = bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.functions[i].end:
            return self.functions[i]
        return None

    def function_named(self, name: str) -> ElfFunction | None:
        return next((f for f in self.functions if name in f.names), None)


def read_functions(path: Path) -> ElfFunctions:
    """Every named function of the ELF; aliases at one address are merged into one range
    (the widest) with all their names. ElfError for a stripped ELF or another machine."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        arch, float_abi = _header(elf, path)
        symbols = _function_symbols(elf, clear_thumb_bit=arch == "arm")
        if symbols is None:
            raise ElfError(f"{path}: no symbol table (stripped ELF); the checks need function symbols")
        spans: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for sym in symbols:
            if not sym.name:
                continue
            spans.setdefault((sym.start, sym.start + max(sym.size, 2)), []).append((0 if sym.is_global else 1,
                                                                                      sym.name))
    merged: dict[int, ElfFunction] = {}
    for (start, end), names in sorted(spans.items()):
        ordered = tuple(n for _, n in sorted(names))
        prev = merged.get(start)
        if prev is None:
            merged[start] = ElfFunction(start, end, ordered)
        else:  # aliases with different sizes: keep the widest span and every name
            merged[start] = ElfFunction(start, max(end, prev.end), prev.names + ordered)
    return ElfFunctions(path, arch, float_abi, sorted(merged.values(), key=lambda f: f.start))


def entry_point(path: Path) -> int:
    """The ELF's entry address (e_entry: Reset_Handler / _start), Thumb bit cleared."""
    with path.open("rb") as fh:
        return int(ELFFile(fh)["e_entry"]) & ~1


def symbol_address(path: Path, name: str) -> int | None:
    """The value of the symbol ``name`` (any type, e.g. the linker script's ``__stack_top__``)."""
    with path.open("rb") as fh:
        table = ELFFile(fh).get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            return None
        return next((int(s["st_value"]) for s in table.iter_symbols() if s.name == name), None)


def object_words(path: Path, name: str) -> list[int] | None:
    """The little-endian 32-bit words of the data object symbol ``name`` (e.g. the Cortex-M
    vector table ``g_vectors``) as the ELF's section holds them; None when there is no such
    object with contents."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        table = elf.get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            return None
        sym = next((s for s in table.iter_symbols() if s.name == name and s["st_info"]["type"] == "STT_OBJECT"),
                   None)
        if sym is None or sym["st_shndx"] in ("SHN_UNDEF", "SHN_ABS", "SHN_COMMON"):
            return None
        section = elf.get_section(sym["st_shndx"])
        if section["sh_type"] == "SHT_NOBITS":
            return None
        start = int(sym["st_value"]) - int(section["sh_addr"])
        data = section.data()[start : start + int(sym["st_size"])]
    return [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data) - 3, 4)]


def symbol_at(path: Path, address: int) -> str | None:
    """The first function symbol (in table order) whose range holds ``address``, Thumb bit
    ignored; None for a stripped ELF or an address outside every function."""
    with path.open("rb") as fh:
        symbols = _function_symbols(ELFFile(fh), clear_thumb_bit=True)
        if symbols is None:
            return None
        for sym in symbols:
            if sym.start <= address < sym.start + max(sym.size, 1):
                return sym.name
    return None


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class ElfSizes:
    """Flash and RAM an ELF needs (``size`` semantics) and each allocated section's size.

    flash = every allocated section with contents (code, constants, the load image of
    .data); RAM = every allocated writable section (.data, .bss and the .stack reserved, sized
    from the stack's static bound: farm.build.stack)."""

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

