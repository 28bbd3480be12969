"""Turning raw timer ticks into per-inference counts (no board needed)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from farm.board.qemu import EmulatorSpec
from farm.board.counts import cycles_per_inference
from farm.measure.timing import reject_outliers
from farm.board.protocol import Timing

IDENTITY = {"timer": "systick", "timer_hz": "25000000", "null_invoke_instructions": "2"}


def _loop_ticks(instructions: int, r: Fraction, phase: Fraction) -> int:
    """Ticks a window of `instructions` spans when it starts `phase` ticks into a tick."""
    return math.floor(phase + r * instructions)


@pytest.mark.parametrize("model_instructions", [2, 3, 17, 4335, 40017, 1_234_567])
@pytest.mark.parametrize("phase", [Fraction(0), Fraction(1, 5), Fraction(3, 5), Fraction(4, 5)])
def test_exact_count_whatever_the_tick_phase(model_instructions: int, phase: Fraction):
    spec = EmulatorSpec("mps2-an385", icount_shift=6)
    r = spec.ticks_per_instruction("systick", 25_000_000)
    assert r == Fraction(8, 5)
    n, per_iteration_overhead = 8, 61  # input copy, timer reads, loop
    loop = _loop_ticks(n * (model_instructions + per_iteration_overhead), r, phase)
    null_loop = _loop_ticks(n * (2 + per_iteration_overhead), r, 1 - phase / 2)
    timing = Timing(n, 0, 0, 0, loop, null_loop)
    assert spec.instructions_per_inference(timing, IDENTITY) == model_instructions


def test_virtual_clock_counter_on_riscv():
    spec = EmulatorSpec("sifive_e", icount_shift=6)
    assert spec.ticks_per_instruction("minstret", 16_000_000) == 64
    timing = Timing(4, 0, 0, 0, 64 * 4 * (4824 + 30), 64 * 4 * (2 + 30))
    identity = {"timer": "minstret", "timer_hz": "16000000", "null_invoke_instructions": "2"}
    assert spec.instructions_per_inference(timing, identity) == 4824


def test_coarse_timer_gives_the_average_not_a_rounded_guess():
    spec = EmulatorSpec("mps2-an385", icount_shift=0)  # r = 1/40: 40 instructions per tick
    timing = Timing(2, 0, 0, 0, 1000, 10)
    assert spec.instructions_per_inference(timing, IDENTITY) == pytest.approx(990 * 40 / 2 + 2)


def test_cycles_on_a_real_counter_subtract_the_empty_loop():
    assert cycles_per_inference(Timing(10, 0, 0, 0, 12_345, 345), {}) == 1200.0


def test_outlier_windows_are_rejected_and_reported():
    result = reject_outliers("cycles", [1000, 1001, 999, 1000, 5000], outlier_mads=5)
    assert result.window_counts == [1000, 1001, 999, 1000]
    assert result.rejected == [5000]
    assert result.median == 1000


def test_identical_windows_are_kept():
    result = reject_outliers("instructions", [4335.0] * 5, outlier_mads=5)
    assert result.window_counts == [4335.0] * 5 and result.rejected == []
