"""Offline PlatformIO: a project-local core dir with the one core package `pio run` needs.

PlatformIO 6.2 wants the core package ``tool-scons ~4.41101.0`` (SCons 4.11.1) and
would otherwise fetch it from the registry, which is unreachable here. We place it
ourselves from the ``scons`` wheel installed in this environment, with the
``package.json`` and the ``.piopm`` metadata (owner ``platformio``) that make
PlatformIO accept the folder as installed. See the README, "What the set-up does"
(and docs/ARCHITECTURE.md, "State folder").
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata
from pathlib import Path

import SCons  # type: ignore[import-untyped]

from farm.build.locks import locked

SCONS_PACKAGE_VERSION = "4.41101.0"  # PlatformIO encodes SCons 4.11.1 as 4.41101.0
SCONS_REQUIREMENT = "~4.41101.0"

_SCONS_LAUNCHER = '''\
"""SCons launcher placed by tinyfarm (PlatformIO's tool-scons layout)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from SCons.Script import main  # noqa: E402

main()
'''


class PlatformIOSetupError(RuntimeError):
    """The offline PlatformIO core dir could not be prepared."""


def core_dir(state_dir: Path) -> Path:
    return state_dir / "pio-core"


def pio_environment(state_dir: Path) -> dict[str, str]:
    """Environment variables for running ``pio`` against the project-local core dir."""
    env = dict(os.environ)
    env["PLATFORMIO_CORE_DIR"] = str(core_dir(state_dir))
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "no"
    env["PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL"] = "3650"
    env["PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD"] = "0"
    env["PLATFORMIO_NO_ANSI"] = "true"
    return env


def ensure_core_dir(state_dir: Path) -> Path:
    """Create the core dir with tool-scons in place; idempotent and fast when done, and safe
    when several processes (two runs, the workers of a cluster) do it at once."""
    packages = core_dir(state_dir) / "packages"
    scons_pkg = packages / "tool-scons"
    if _placed(scons_pkg):
        return core_dir(state_dir)
    with locked(packages.parent / ".pio-core.lock"):
        if not _placed(scons_pkg):  # another process may have placed it while we waited
            _place_scons(packages, scons_pkg)
    return core_dir(state_dir)


def _placed(scons_pkg: Path) -> bool:
    return (scons_pkg / ".piopm").is_file() and (scons_pkg / "SCons").is_dir()


def _place_scons(packages: Path, scons_pkg: Path) -> None:
    scons_version = metadata.version("scons")
    if scons_version != "4.11.1":
        raise PlatformIOSetupError(
            f"PlatformIO 6.2 needs SCons 4.11.1 (tool-scons {SCONS_REQUIREMENT}); "
            f"this environment has scons {scons_version}: pip install scons==4.11.1"
        )
    tmp = packages / f".tool-scons.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(Path(SCons.__file__).parent, tmp / "SCons")
    (tmp / "scons.py").write_text(_SCONS_LAUNCHER)
    (tmp / "package.json").write_text(
        json.dumps(
            {
                "name": "tool-scons",
                "version": SCONS_PACKAGE_VERSION,
                "description": "SCons 4.11.1, placed offline from the scons wheel by tinyfarm",
            }
        )
    )
    (tmp / ".piopm").write_text(
        json.dumps(
            {
                "type": "tool",
                "name": "tool-scons",
                "version": SCONS_PACKAGE_VERSION,
                "spec": {
                    "owner": "platformio",
                    "id": None,
                    "name": "tool-scons",
                    "requirements": SCONS_REQUIREMENT,
                    "uri": None,
                },
            }
        )
    )
    shutil.rmtree(scons_pkg, ignore_errors=True)
    tmp.rename(scons_pkg)


def main() -> None:
    """``python -m farm.build.platformio_env``: prepare the core dir of the default state folder."""
    from farm.config.state import state_dir

    path = ensure_core_dir(state_dir())
    print(f"[setup] PlatformIO core dir (offline): {path}")


if __name__ == "__main__":
    main()
