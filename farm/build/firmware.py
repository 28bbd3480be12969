"""Firmware stage: (generated model sources, build target) -> PlatformIO project -> ELF.

Builds are cached by a content hash of everything that goes into the ELF: the
generated model, the harness, kernels and platform sources, the board, the
machine and optimization flags, the compiler version and the stack analysis. An
unchanged input is never rebuilt. A build that failed with a verdict the caller
names deterministic (``remember_failure``: the linker's "region overflowed", an array
too large for the core's size_t -- the same input fails the same way) is cached too:
the next build of that key raises the same error at once (``FirmwareBuildError.cached``),
so a model that does not fit a board is not rebuilt every night.

The stack is sized in two steps (Arm and RISC-V boards of the local platform): a first link
with no stack reservation and the RAM region opened (it links whatever the size), whose code and GCC's -fstack-usage frames give the static bound
(farm.build.stack), then a relink with ``__stack_size`` = bound + margin (the project's
``stack_size`` file, read by the platform's builder; only the link step runs again). Where
the bound is not computable the linker script's fixed reservation stays, with the reason. PlatformIO runs offline against a project-local core dir
(farm.build.platformio_env).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from farm.config.machine_flags import MachineFlags
from farm.build.locks import locked
from farm.build.platformio_env import ensure_core_dir, pio_environment

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
OPT_FLAGS = ("-O2",)
COMPILER = {"arm": "arm-none-eabi-gcc", "riscv": "riscv64-unknown-elf-gcc", "avr": "avr-gcc"}
#: the sources that compute the stack reservation (the bound, its margin): in the build key
_FARM = Path(__file__).resolve().parents[1]
STACK_ANALYSIS = (_FARM / "build" / "stack.py", _FARM / "preflight" / "call_graph.py",
                  _FARM / "preflight" / "disassembly.py")
#: architectures whose firmware gets a stack sized from its static bound (AVR keeps avr-libc's)
SIZED_STACK_ARCHS = ("arm", "riscv")
#: an ELF -> its disassembly and call graph (farm.preflight's read_elf_code and call_graph, handed
#: in by a caller above preflight: farm.measure.job.elf_code_and_graph); None: no stack sizing,
#: the linker script's fixed reservation
CodeReader = Callable[[Path], tuple[Any, Any]]


class FirmwareBuildError(RuntimeError):
    """PlatformIO failed to build the firmware; the message carries its log tail.
    ``cached``: the failure was remembered from an earlier build of the same key (not rebuilt)."""

    def __init__(self, message: str, *, cached: bool = False) -> None:
        super().__init__(message)
        self.cached = cached


_LOG_NAMED = re.compile(r"\(log: (\S+?build\.log)\)")


def build_log_of(message: str) -> Path | None:
    """The build log a FirmwareBuildError's message names ("... failed (log: PATH):"), None if none."""
    named = _LOG_NAMED.search(message)
    return Path(named.group(1)) if named is not None else None


#: a build failure's text -> whether the same input always fails so (then it is cached)
FailurePolicy = Callable[[str], bool]
#: the file in a build folder that remembers a deterministic failure
FAILED_MANIFEST = "failed.json"


@dataclass(frozen=True)
class BuildTarget:
    board: str  # PlatformIO board id (of the local platform, or of ``platform``)
    machine: MachineFlags
    #: a real board's PlatformIO dev-platform (ststm32, ...): built with the Arduino framework
    #: and the harness's Arduino board layer; None: the local emulated-board platform
    platform: str | None = None


@dataclass(frozen=True)
class FirmwareBuild:
    elf: Path
    firmware_hash: str
    board: str
    compiler: str
    compiler_flags: str
    float_abi: str
    cached: bool
    build_seconds: float
    #: the stack: the static bound (bytes, None when not computable), the reservation linked as
    #: __stack_size (bytes, None: the board's own, e.g. AVR or a real board's framework) and how
    #: it was sized (farm.build.stack); details: the bound's parts (StackBound.to_json)
    stack_bound_bytes: int | None = None
    stack_reserved_bytes: int | None = None
    stack_sizing: str | None = None
    stack_details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["elf"] = str(self.elf)
        return data


def compiler_version(arch: str) -> str:
    binary = COMPILER[arch]
    if shutil.which(binary) is None:
        raise FirmwareBuildError(f"{binary} not found on PATH (install the Debian toolchain: make setup)")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


def _tree_digest(root: Path, digest: hashlib._Hash) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part in {".pio", "__pycache__"} for part in rel.parts):
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")


def build_key(model_dir: Path, target: BuildTarget, compiler: str, sized_stack: bool = False) -> str:
    digest = hashlib.sha256()
    for name in ("model.c", "model_generated.h"):
        digest.update(name.encode() + b"\0" + (model_dir / name).read_bytes())
    for part in ("lib", "platform"):
        _tree_digest(FIRMWARE_DIR / part, digest)
    if sized_stack:  # the stack's reservation is computed by these (sized_stack)
        digest.update(b"sized stack\0")
        for module in STACK_ANALYSIS:
            digest.update(module.read_bytes())
    key = [target.board, target.machine.flags, OPT_FLAGS, compiler]
    digest.update(json.dumps(key + [target.platform] if target.platform else key).encode())
    return digest.hexdigest()


def _platformio_ini(target: BuildTarget, firmware_hash: str, project: Path) -> str:
    defines = [
        f'-DFIRMWARE_HASH=\\"{firmware_hash[:16]}\\"',
        f'-DFIRMWARE_FLOAT_ABI=\\"{target.machine.float_abi}\\"',
    ]
    if target.platform:  # a real board: its own platform, the Arduino framework (not verifiable offline)
        return "\n".join([
            "; generated by tinyfarm (farm/build/firmware.py); do not edit",
            "[platformio]",
            f"lib_dir = {FIRMWARE_DIR / 'lib'}",
            "",
            "[env:farm]",
            f"platform = {target.platform}",
            f"board = {target.board}",
            "framework = arduino",
            "lib_deps = harness, harness_arduino, kernels",
            "lib_archive = no",
            "lib_ldf_mode = off",
            f"build_flags = {' '.join(OPT_FLAGS)} -I{project / 'include'} {' '.join(defines)}",
            "",
        ])
    return "\n".join(
        [
            "; generated by tinyfarm (farm/build/firmware.py); do not edit",
            "[platformio]",
            f"lib_dir = {FIRMWARE_DIR / 'lib'}",
            "",
            "[env:farm]",
            f"platform = symlink://{FIRMWARE_DIR / 'platform'}",
            f"board = {target.board}",
            f"board_build.machine_flags = {target.machine.text}",
            "lib_deps = harness, kernels",
            "lib_archive = no",
            "lib_ldf_mode = off",
            f"build_flags = {' '.join(OPT_FLAGS)} -I{project / 'include'} {' '.join(defines)}",
            "",
        ]
    )


def build_firmware(model_dir: Path, target: BuildTarget, state_dir: Path,
                   code_reader: CodeReader | None = None,
                   remember_failure: FailurePolicy | None = None) -> FirmwareBuild:
    """Build (or fetch from cache) the firmware for one generated model and target.

    ``code_reader``: with it, the stack is sized from its static bound (two links, see the
    module docstring); without, the linker script's fixed reservation. ``remember_failure``:
    which failures are deterministic verdicts to cache (see the module docstring); a
    remembered failure is raised again only to a caller that passes a policy."""
    compiler = compiler_version(target.machine.arch) if not target.platform \
        else f"the {target.platform} platform's toolchain (PlatformIO, Arduino framework)"
    sized = code_reader is not None and not target.platform and target.machine.arch in SIZED_STACK_ARCHS
    key = build_key(model_dir, target, compiler, sized)
    project = state_dir / "builds" / key[:20]
    manifest = project / "build.json"
    elf = project / ".pio" / "build" / "farm" / "firmware.elf"
    flags = " ".join((*target.machine.flags, *OPT_FLAGS))
    with locked(project.parent / f".{key[:20]}.lock"):
        if manifest.is_file() and elf.is_file():
            info = json.loads(manifest.read_text())
            return FirmwareBuild(elf, key, target.board, compiler, flags, target.machine.float_abi, True,
                                 float(info["build_seconds"]), **info.get("stack", {}))
        failed = project / FAILED_MANIFEST
        if remember_failure is not None and failed.is_file():
            remembered = json.loads(failed.read_text())
            if remember_failure(remembered["message"]):
                raise FirmwareBuildError(remembered["message"], cached=True)
        shutil.rmtree(project, ignore_errors=True)
        (project / "src").mkdir(parents=True)
        (project / "include").mkdir()
        shutil.copy2(model_dir / "model.c", project / "src" / "model.c")
        shutil.copy2(model_dir / "model_generated.h", project / "include" / "model_generated.h")
        (project / "platformio.ini").write_text(_platformio_ini(target, key, project))
        ensure_core_dir(state_dir)
        started = time.monotonic()
        try:
            stack = _link(project, target, state_dir, elf, code_reader if sized else None)
        except FirmwareBuildError as exc:
            if remember_failure is not None and remember_failure(str(exc)):
                failed.write_text(json.dumps({"key": key, "board": target.board, "message": str(exc),
                                              "build_seconds": time.monotonic() - started}, indent=2))
            raise
        seconds = time.monotonic() - started
        manifest.write_text(json.dumps({"key": key, "board": target.board, "flags": flags,
                                        "compiler": compiler, "build_seconds": seconds, "stack": stack}, indent=2))
    return FirmwareBuild(elf, key, target.board, compiler, flags, target.machine.float_abi, False, seconds, **stack)


def _link(project: Path, target: BuildTarget, state_dir: Path, elf: Path,
          code_reader: CodeReader | None) -> dict[str, Any]:
    """Build the project into ``elf``; with ``code_reader``, in the two links that size the
    stack (the first without a reservation, RAM opened: the bound comes from its code) and
    the stack fields of the build (sized_stack); without, one build and no stack fields."""
    if code_reader is None:
        _pio_run(project, target, state_dir, elf)
        return {}
    (project / "stack_size").write_text("probe\n")
    _pio_run(project, target, state_dir, elf)
    stack = sized_stack(elf, code_reader)
    (project / "stack_size").write_text(f"{stack['stack_reserved_bytes']}\n")
    _pio_run(project, target, state_dir, elf)  # relinks only: the link command changed
    return stack


def sized_stack(elf: Path, code_reader: CodeReader) -> dict[str, Any]:
    """The stack fields of a FirmwareBuild for a linked ELF whose build left .su files:
    the static bound, the reservation sized from it, how (farm.build.stack)."""
    from farm.build.stack import read_su_files, reservation, stack_bound, su_files

    from farm.build.elf import elf_header
    from farm.build.stack import StackBound

    try:
        code, graph = code_reader(elf)
        bound = stack_bound(elf, read_su_files(su_files(elf.parent)), code, graph)
    except RuntimeError as exc:  # PortabilityError, ElfError: no disassembler, an ELF it cannot read
        bound = StackBound(elf_header(elf)[0], None, reason=f"the ELF could not be analysed: {exc}")
    reserved, how = reservation(bound)
    return {"stack_bound_bytes": bound.bytes, "stack_reserved_bytes": reserved, "stack_sizing": how,
            "stack_details": bound.to_json()}


def _pio_run(project: Path, target: BuildTarget, state_dir: Path, elf: Path) -> None:
    with locked(state_dir / ".pio-core.lock"):
        proc = subprocess.run(
            [sys.executable, "-m", "platformio", "run", "-d", str(project)],
            capture_output=True,
            text=True,
            env=pio_environment(state_dir),
        )
    with (project / "build.log").open("a") as log:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not elf.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise FirmwareBuildError(
            f"PlatformIO build for board {target.board} failed (log: {project / 'build.log'}):\n{tail}"
        )
