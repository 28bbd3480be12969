"""The tools and services scripts/setup.sh installs, and the one rule for a test that needs one
(pytest plugin module, registered by tests/conftest.py).

The rule: a test that needs a tool (or a service) the set-up installs SKIPS, naming it, when
it is missing on a developer's machine, and FAILS when ``$CI`` is set: CI runs after the
set-up, so a missing tool there is a broken set-up, not a reason to go green without the test.

    @pytest.mark.requires_tool("arm-none-eabi-gcc", "arm-none-eabi-objdump")
    def test_x(): ...

    def test_y():
        gcc = require_tool("gcc")         # the path, or skip / fail by the rule

    setup_missing("no PostgreSQL server: ...")   # a service: skip / fail by the rule

Only what the set-up installs is such a tool (SETUP_TOOLS): hardware that cannot exist on
the test machine (a PPK2, a Joulescope, a real board) is not, and its tests skip as before.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

#: tool (command on PATH) -> the package in scripts/setup.sh's APT_PACKAGES that installs it
SETUP_TOOLS: dict[str, str] = {
    "gcc": "gcc",
    "ar": "binutils",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-g++": "gcc-arm-none-eabi",
    "arm-none-eabi-objdump": "gcc-arm-none-eabi",  # its binutils
    "arm-none-eabi-nm": "gcc-arm-none-eabi",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
    "riscv64-unknown-elf-objdump": "gcc-riscv64-unknown-elf",
    "qemu-system-arm": "qemu-system-arm",
    "qemu-system-riscv32": "qemu-system-misc",
    "avr-gcc": "gcc-avr",
    "avr-objdump": "binutils-avr",
    "simavr": "simavr",  # the farm's runner links libsimavr (libsimavr-dev), installed with it
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
    "chromium": "chromium",
    "git": "git",
}

#: where Debian puts the tools that are not on a user's PATH
_SBIN = ("/usr/sbin", "/sbin")


def in_ci() -> bool:
    """True when the tests run in CI (``$CI`` set and not empty)."""
    return bool(os.environ.get("CI"))


def setup_missing(message: str) -> NoReturn:
    """Something the set-up installs is missing: FAIL in CI, skip elsewhere (with `message`)."""
    if in_ci():
        pytest.fail(f"{message} -- CI must run this test: scripts/setup.sh installs it (make setup)",
                    pytrace=False)
    pytest.skip(f"{message} (make setup installs it)")


def find_tool(name: str) -> str | None:
    """The path of `name` on PATH (or in /usr/sbin for a daemon such as sshd), else None."""
    if name not in SETUP_TOOLS:
        raise KeyError(f"{name!r} is not a tool scripts/setup.sh installs (tests/fixtures_tools.py SETUP_TOOLS: "
                       f"{', '.join(sorted(SETUP_TOOLS))})")
    path = shutil.which(name)
    if path is None and name == "sshd":
        path = next((os.path.join(d, name) for d in _SBIN if os.access(os.path.join(d, name), os.X_OK)), None)
    return path


def require_tool(name: str) -> str:
    """The path of the set-up's tool `name`; missing: skip, or FAIL in CI (the rule)."""
    path = find_tool(name)
    if path is None:
        setup_missing(f"{name} not found (Debian package {SETUP_TOOLS[name]})")
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires_tool(*names): the test needs these tools of scripts/setup.sh; missing: skip, "
                   "or FAIL when $CI is set")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_tool"):
        for name in mark.args:
            require_tool(name)
