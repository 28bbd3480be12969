"""The stack on the emulated boards: the firmware's reservation is sized from its static bound
(farm/build/stack.py), and the harness paints the stack at boot and reports the high-water mark
after the inferences (READ_TIMING, stack_paint.h). On every ARM and RISC-V board:
0 < measured <= static bound <= reservation, and for a small model (sine int8) the reservation
is smaller than the old fixed one (8 KiB on Cortex-M, 2 KiB on RV32)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.build.elf import elf_sizes
from farm.build.stack import FIXED_BYTES
from farm.config.inventory import load_inventory
from farm.measure.job import measure_one
from farm.measure.timing import MeasurePlan

REPO = Path(__file__).resolve().parents[2]
ARCH = {"qemu-m4f": "arm", "qemu-m3": "arm", "qemu-rv32": "riscv"}


@pytest.mark.requires_tool("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc", "qemu-system-arm", "qemu-system-riscv32")
@pytest.mark.parametrize("board", sorted(ARCH))
def test_painted_high_water_is_within_the_bound_and_the_reservation(state_dir: Path, board: str):
    device = next(d for d in load_inventory(REPO / "devices.yaml").devices if d.name == board)
    record = measure_one(device, "sine", "int8", state=state_dir,
                         plan=MeasurePlan(warmup=1, windows=3, inferences_per_window=4))
    assert record.status == "ok", record.message
    assert record.bit_exact_fraction == 1.0
    used, bound, reserved = record.stack_used_bytes, record.stack_bound_bytes, record.stack_reserved_bytes
    assert used is not None and bound is not None and reserved is not None, record.details
    assert 0 < used <= bound <= reserved, (used, bound, reserved)
    assert reserved < FIXED_BYTES[ARCH[board]]  # sine no longer reserves 8 KiB / 2 KiB
    assert record.details["stack"]["reason"] is None
    assert "static bound" in record.details["stack"]["sizing"]
    # the reservation is the ELF's .stack section, counted in its RAM figure
    from farm.build.prepare import prepare_firmware
    from farm.models import build_variant

    art = build_variant("sine", "int8", state_dir / "models")
    from farm.measure.job import elf_code_and_graph

    fw = prepare_firmware(art.tflite_path, "sine", "int8", device, state_dir, code_reader=elf_code_and_graph)
    assert fw.build.cached and fw.build.stack_reserved_bytes == reserved
    sizes = elf_sizes(fw.build.elf)
    assert sizes.sections[".stack"] == reserved and fw.ram_bytes == record.ram_bytes
