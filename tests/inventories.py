"""Inventories the tests write: one serial board (a QEMU mps2-an385 "flashed" by the farm's
qemu flash protocol, its UART a pty at ``port``), as a user would declare a USB board."""

from __future__ import annotations

SERIAL_M3 = """\
devices:
  - name: usb-m3
    core: cortex-m3
    fpu: none
    dsp: false
    clock_hz: 25000000
    flash_bytes: 4194304
    ram_bytes: 4194304
    board: qemu-mps2-an385
    serial:
      port: {port}
    flash:
      protocol: qemu
      machine: mps2-an385
      icount_shift: 6
"""

#: the same board with the datasheet power model (energy figures)
SERIAL_M3_WITH_POWER = SERIAL_M3 + "    power: {{kind: model, voltage: 3.3, ua_per_mhz: 200.0}}\n"
