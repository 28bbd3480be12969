"""Flashing: drivers behind a tiny protocol, chosen by the inventory's ``flash.protocol``.

A :class:`FlashPlan` is the data a flasher needs for one device (protocol, port,
options) plus what its count unit is. The flasher itself lives in
``farm/board/agent.py`` -- the one file that also runs on bench hosts -- so a
board is flashed by the same code on the controller (:class:`LocalFlasher`, in
process) and on a bench host (farm.board.ssh.bench, over SSH). Protocol
``qemu`` (re)starts QEMU with the ELF and exposes its UART as a pty at the
device's port; every other protocol is PlatformIO's ``upload_protocol``.

Flasher lifecycle (labgrid's bootstrap protocol): ``load(elf)`` -> open the
console -> ``release()`` (QEMU: continue the halted guest) -> ... -> ``stop()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.board.qemu import EmulatorSpec
from farm.config.capabilities import qemu_binary
from farm.board.infra import FlashError
from farm.board.counts import CountConverter
from farm.board.protocol import Timing
from farm.board import agent
from farm.config.capabilities import count_unit
from farm.store.status import Unit


@dataclass(frozen=True)
class FlashPlan:
    """What the agent needs to flash one device, and the unit its timer counts in."""

    protocol: str
    port: str
    baud: int
    options: Mapping[str, str]
    unit: Unit  # farm.config.capabilities.count_unit of the device
    convert: CountConverter
    #: files of the build to copy next to the ELF on a bench host (by name)
    image_files: tuple[str, ...] = ("firmware.elf",)
    notes: tuple[str, ...] = field(default=())

    def agent_args(self, command: str, image: str | None = None) -> list[str]:
        """The agent's argument list (never a shell string: see farm.board.ssh.bench)."""
        args = [command, "--protocol", self.protocol, "--port", self.port]
        if command == "flash":
            if image is None:
                raise ValueError("flash needs an image")
            args += ["--image", image]
        if command == "bridge":
            args += ["--baud", str(self.baud)]
        for key, value in sorted(self.options.items()):
            args += ["--set", f"{key}={value}"]
        return args


PlanFactory = Callable[[Any], FlashPlan]
_PLANS: dict[str, PlanFactory] = {}


def flash_protocol(name: str) -> Callable[[PlanFactory], PlanFactory]:
    """Register the plan factory of a flash protocol (``default`` for PlatformIO uploads)."""

    def register(fn: PlanFactory) -> PlanFactory:
        _PLANS[name] = fn
        return fn

    return register


def plan_for(device: Any) -> FlashPlan:
    """The flash plan of a serial device; raises FlashError when it has no ``flash`` section."""
    if device.serial is None:
        raise FlashError(f"device {device.name} is emulated; it is not flashed over a serial port")
    if device.flash is None:
        raise FlashError(f"device {device.name} has no 'flash' section in the inventory: "
                         f"the farm cannot load firmware onto it")
    factory = _PLANS.get(device.flash.protocol, _PLANS["default"])
    return factory(device)


@flash_protocol("qemu")
def _qemu_plan(device: Any) -> FlashPlan:
    machine = device.flash.machine
    spec = EmulatorSpec(machine, device.flash.icount_shift or 0)
    return FlashPlan(
        protocol="qemu", port=device.serial.port, baud=device.serial.baud,
        options={"machine": machine, "icount_shift": str(spec.icount_shift), "qemu_binary": qemu_binary(machine)},
        unit=count_unit(device), convert=spec.instructions_per_inference,
    )


def cycles_from_timer(clock_hz: int) -> CountConverter:
    """Cycles per inference on a real core from the harness's two loop windows.

    A cycle counter (DWT->CYCCNT, SysTick on the core clock) ticks at ``clock_hz``;
    a slower timer (the Arduino layer's micros() fallback, 1 MHz) is scaled to
    cycles, and is coarse: one tick is clock_hz / timer_hz cycles.
    """

    def convert(timing: Timing, identity: Mapping[str, str]) -> float:
        timer_hz = int(identity.get("timer_hz", clock_hz)) or clock_hz
        per_inference = (timing.loop_ticks - timing.null_loop_ticks) / timing.count
        return per_inference * clock_hz / timer_hz

    return convert


@flash_protocol("default")
def _platformio_plan(device: Any) -> FlashPlan:
    if not device.platform:
        raise FlashError(f"device {device.name}: flash protocol {device.flash.protocol} uploads with PlatformIO, "
                         f"which needs the device's 'platform' (its PlatformIO dev-platform, e.g. ststm32)")
    options = {"board": device.board, "platform": device.platform, "framework": "arduino"}
    if device.flash.probe_serial:
        options["probe_serial"] = device.flash.probe_serial
    return FlashPlan(
        protocol=device.flash.protocol, port=device.serial.port, baud=device.serial.baud, options=options,
        unit=count_unit(device), convert=cycles_from_timer(device.clock_hz),
        image_files=agent.IMAGE_FILES,
    )


class LocalFlasher:
    """Runs the agent's flasher in this process, for boards on the controller's own ports."""

    def __init__(self, plan: FlashPlan) -> None:
        self.plan = plan
        self._impl = agent.flasher_for(plan.protocol, plan.port, dict(plan.options))

    def load(self, elf: Path) -> None:
        try:
            self._impl.load(str(elf))
        except (agent.AgentError, OSError) as exc:
            raise FlashError(f"flashing {self.plan.port} with {self.plan.protocol} failed: {exc}") from None

    def release(self) -> None:
        try:
            self._impl.release()
        except (agent.AgentError, OSError) as exc:
            raise FlashError(f"releasing the board on {self.plan.port} failed: {exc}") from None

    def stop(self) -> None:
        self._impl.stop()
