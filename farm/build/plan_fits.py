"""Does the generated model fit its device before anything is built: its memory plan.

The code generator knows the bytes the model needs in RAM whatever the build: the
arena (activations and kernel scratch, farm.codegen.planner) and the harness's input
staging buffer (MODEL_INPUT_BYTES). On a core whose compiler cannot even declare an
object that big (a 16-bit ``int``/``size_t``, avr-gcc: at most 32,767 bytes, from the
capability table's ``int_bits``) a build would end in a compile error, not in the
linker's "region overflowed by N bytes": there the build is refused at once, with the
numbers from the plan (farm.build.fits.DoesNotFit). Elsewhere the linker says the
exact bytes (farm.build.fits.linker_overflow). :func:`object_too_large` turns the
compile error into the same kind of sentence for a constant array too big for one
object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from farm.build.firmware import build_log_of
from farm.build.fits import DoesNotFit


def max_object_bytes(core: Any) -> int | None:
    """The largest object the core's C compiler declares (PTRDIFF_MAX), None when it is not a limit here."""
    from farm.config.capabilities import CORES, Core

    info = CORES.get(Core(str(core)))
    bits = info.int_bits if info is not None else 32
    return (1 << (bits - 1)) - 1 if bits < 32 else None

_TOO_LARGE = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):\d+: error: size of array .(?P<name>\w+). is too large",
                        re.MULTILINE)


def check_plan_fits(device: Any, generated: Any) -> None:
    """On a core with a 16-bit size_t: raise DoesNotFit when the model's arena plus its input
    staging buffer exceed the device's RAM (the compiler would refuse the objects first)."""
    if max_object_bytes(device.core) is None:
        return
    arena, staging = int(generated.arena_bytes), int(generated.input_bytes)
    needed = arena + staging
    if needed > device.ram_bytes:
        raise DoesNotFit(f"RAM: needs at least {needed} bytes (arena {arena} + input buffer {staging}), "
                         f"{device.name} has {device.ram_bytes} (from the memory plan, before building)")


def object_too_large(log: str, generated_dir: Path, device: Any) -> str | None:
    """The compiler's "size of array 'X' is too large" as a does-not-fit sentence with the
    array's bytes (read from its declaration in the generated source, ``generated_dir``),
    None when absent. ``log``: the build error's text, or the build log it names."""
    found = _TOO_LARGE.search(log)
    named = build_log_of(log)
    if found is None and named is not None:  # the message keeps the log's tail: the errors came first
        try:
            found = _TOO_LARGE.search(named.read_text(errors="replace"))
        except OSError:
            found = None
    if found is None:
        return None
    source = generated_dir / Path(found.group("file")).name
    name, size = found.group("name"), _declared_bytes(source, int(found.group("line")))
    what = f"{size} bytes" if size is not None else "more bytes"
    limit = max_object_bytes(device.core)
    return (f"array {name}: needs {what} in one object, the {device.core} compiler allows at most "
            f"{limit if limit is not None else 'fewer'} bytes (its size_t); {device.name} cannot hold the model "
            f"as built")


def _declared_bytes(source: Path, line: int) -> int | None:
    """The byte size of the array declared at ``line`` of ``source`` (``type name[N]``), if readable."""
    try:
        text = source.read_text(errors="replace").splitlines()[line - 1]
    except (OSError, IndexError):
        return None
    match = re.search(r"(u?int(8|16|32)_t|float|tf_channel_s8)\s+\w+\s*\[(\d+)\]", text)
    if match is None:
        return None
    width = {"8": 1, "16": 2, "32": 4}.get(match.group(2) or "", 4)
    return int(match.group(3)) * width if match.group(1) != "tf_channel_s8" else None
