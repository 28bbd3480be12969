"""Fault decoding (farm/board/faults.py) and the pipeline's classification of faults."""

from __future__ import annotations

from types import SimpleNamespace

from farm.board.faults import decode_fault
from farm.measure.fault_verdict import fault_status
from farm.board.session import DeviceFault

M3 = SimpleNamespace(name="m3", core="cortex-m3", fpu="none", dsp=False)
NOCP = 1 << 19
UNDEFINSTR = 1 << 16


def _arm(cfsr: int, pc: int = 0x1234) -> tuple[int, ...]:
    return (1, 6, cfsr, 0, 0, 0, pc, 0x5679, 0x01000000)


def test_arm_nocp_on_a_core_without_fpu():
    report = decode_fault(_arm(NOCP), None, has_fpu=False)
    assert report.kind == "UsageFault NOCP"
    assert report.sentence == "UsageFault NOCP (coprocessor/FPU instruction) at 0x00001234 on a core without an FPU"
    assert decode_fault(_arm(NOCP), None, has_fpu=True).sentence.endswith("at 0x00001234")


def test_riscv_fp_instruction_is_named_32_bit_and_compressed():
    for bits in (0x00007053, 0x10F7F7D3, 0x0005A007, 0x2000):  # fadd.s, fmul.s, flw, c.fld
        report = decode_fault((2, 2, 0x20400100, bits), None, has_fpu=False)
        assert report.kind == "trap 2 FPU", hex(bits)
        assert report.sentence.endswith("at 0x20400100 on a core without an FPU")
    other = decode_fault((2, 2, 0x20400100, 0x0000006F), None, has_fpu=False)  # an illegal jal-shaped word
    assert other.kind == "trap 2" and "mtval 0x0000006f" in other.sentence


def test_pipeline_classifies_missing_unit_faults_not_portable():
    status, message = fault_status(DeviceFault(_arm(NOCP)), M3, None)
    assert status == "not-portable" and message.startswith("faulted on the board: UsageFault NOCP")
    assert fault_status(DeviceFault((2, 2, 0x100, 0x7053)), M3, None)[0] == "not-portable"
    # a plain undefined instruction (no ELF to look at) or a bus fault stays "faulted"
    assert fault_status(DeviceFault(_arm(UNDEFINSTR)), M3, None)[0] == "faulted"
    assert fault_status(DeviceFault((2, 5, 0x100, 0x40)), M3, None)[0] == "faulted"
