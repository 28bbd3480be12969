"""An ELF's instructions, function by function, from the toolchain's own disassembler.

``arm-none-eabi-objdump -d`` / ``riscv64-unknown-elf-objdump -d`` decodes the
instructions (nothing here decodes an encoding by hand); the function symbols and
their ranges come from the one ELF reader, farm.build.elf. Bytes objdump decodes
outside every function (weights, tables) are dropped.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farm.build.elf import ElfError, ElfFunction, ElfFunctions, read_functions

OBJDUMP = {"arm": "arm-none-eabi-objdump", "riscv": "riscv64-unknown-elf-objdump", "avr": "avr-objdump"}


class PortabilityError(RuntimeError):
    """The ELF could not be analysed (no disassembler, no entry symbol, ...)."""


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int  # bytes of the encoding
    mnemonic: str
    operands: str
    function: str

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.operands}".strip()


@dataclass
class ElfCode:
    """An ELF's functions (farm.build.elf) and their instructions (objdump)."""

    symbols: ElfFunctions
    instructions: list[Instruction]

    @property
    def path(self) -> Path:
        return self.symbols.path

    @property
    def arch(self) -> str:
        return self.symbols.arch

    @property
    def float_abi(self) -> str:
        return self.symbols.float_abi

    @property
    def functions(self) -> list[ElfFunction]:
        return self.symbols.functions

    @property
    def by_start(self) -> dict[int, ElfFunction]:
        return self.symbols.by_start

    def function_at(self, address: int) -> ElfFunction | None:
        return self.symbols.function_at(address)

    def function_named(self, name: str) -> ElfFunction | None:
        return self.symbols.function_named(name)

    def instruction_at(self, address: int) -> Instruction | None:
        return next((i for i in self.instructions if i.address == address), None)


def elf_functions(path: Path) -> ElfFunctions:
    """:func:`farm.build.elf.read_functions`, its errors as PortabilityError."""
    try:
        return read_functions(path)
    except ElfError as exc:
        raise PortabilityError(str(exc)) from None


def objdump_binary(arch: str) -> str:
    binary = OBJDUMP[arch]
    if shutil.which(binary) is None:
        raise PortabilityError(f"{binary} not found on PATH (install the Debian toolchain: make setup)")
    return binary


def read_elf_code(path: Path) -> ElfCode:
    """Disassemble every function of the ELF (one objdump run)."""
    symbols = elf_functions(path)
    arch = symbols.arch
    proc = subprocess.run([objdump_binary(arch), "-d", "-w", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PortabilityError(f"{OBJDUMP[arch]} failed on {path}: {proc.stderr.strip()}")
    code = ElfCode(symbols, [])
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0].strip().endswith(":"):
            continue
        try:
            address = int(parts[0].strip()[:-1], 16)
        except ValueError:
            continue
        fn = code.function_at(address)
        if fn is None:
            continue  # data (weights, tables) that objdump decoded as code
        raw = parts[1].replace(" ", "")
        mnemonic = parts[2].strip()
        operands = "\t".join(parts[3:]).strip()
        code.instructions.append(Instruction(address, len(raw) // 2, mnemonic, operands, fn.name))
    return code
