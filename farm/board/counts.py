"""How a board's raw timing becomes a count per inference in the device's unit.

The harness reports raw ticks of its timer (farm.board.protocol.Timing); a
:data:`CountConverter`, chosen by the board driver / flash plan of the device,
turns them into cycles (a cycle counter at the core clock) or, on QEMU, into
instructions (SysTick under ``-icount``: farm.board.qemu.EmulatorSpec).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from farm.board.protocol import Timing

#: (raw timing of one RUN, the harness's identity) -> count per inference in the device's unit
CountConverter = Callable[[Timing, Mapping[str, str]], float]


def cycles_per_inference(timing: Timing, identity: Mapping[str, str]) -> float:
    """A cycle counter (DWT->CYCCNT, SysTick at core clock): the model loop minus the
    identical loop with an empty model, per inference (cycles beyond an empty call)."""
    return (timing.loop_ticks - timing.null_loop_ticks) / timing.count
