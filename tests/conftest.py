"""Shared set-up of the project's own tests.

The state folder (model cache, firmware builds, PlatformIO core dir) of the test
run is ``.farm/test-state`` in the checkout unless FARM_HOME is set: persistent
between local runs (so unchanged models and firmware are not rebuilt), fresh in
CI's clean clone.

The one rule for tools and services (tests/fixtures_tools.py): a test that needs
something scripts/setup.sh installs (host gcc, the Arm and RISC-V cross compilers,
QEMU, OpenSSH, PostgreSQL, Chromium) skips when it is missing, naming it, and
FAILS when ``$CI`` is set (``.ci/run`` sets it): CI never goes green without it.
Mark the test ``@pytest.mark.requires_tool("name", ...)``, or call
``require_tool("name")`` / ``setup_missing(reason)`` where the need is found.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("FARM_HOME", str(REPO / ".farm" / "test-state"))
# The farm's commands and the nightly work through the whole model zoo by default; the
# project's own tests run them end to end on the sine model only (the zoo's big models
# take minutes on the emulators: the HIL suite, `make nightly`, covers them).
os.environ.setdefault("FARM_MODELS", "sine")


@pytest.fixture(scope="session")
def state_dir() -> Path:
    from farm.config.state import state_dir as farm_state_dir

    return farm_state_dir()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO

# fixtures_tools first: the others use its rule
pytest_plugins = ["fixtures_tools", "fixtures_models", "postgres_server"]
