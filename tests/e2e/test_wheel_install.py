"""tinyfarm installed, not checked out: the built wheel in a fresh virtualenv, used from a
project folder outside this checkout.

The wheel is built from a copy of the package (``pip wheel --no-deps``), installed into a new
venv with ``pip install --no-deps`` (no editable install; nothing of this checkout on
``sys.path``). Its dependencies (TensorFlow, PlatformIO, ...) are not downloaded again: the new
venv sees the set-up's site-packages through a ``.pth`` file, with tinyfarm's own editable
install left out. Then ``farm`` is run there the way a team runs it: the firmware (harness,
kernels, the PlatformIO dev-platform) and the HIL suite come from the installed package, the
state folder is the project's ``.farm/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.requires_tool("qemu-system-arm", "arm-none-eabi-gcc")


def _package_files(folder: Path) -> set[str]:
    return {str(p.relative_to(REPO)) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("wheel-src")
    shutil.copytree(REPO / "farm", source / "farm", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(source)], check=True, capture_output=True, text=True, timeout=300)
    (built,) = dist.glob("tinyfarm-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (its bin folder)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    deps = tmp_path_factory.mktemp("deps")  # the set-up's site-packages without tinyfarm itself
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("tinyfarm", "__editable__", "farm")) or entry.name == "__pycache__":
            continue
        (deps / entry.name).symlink_to(entry)
    purelib = Path(subprocess.run([str(root / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "tinyfarm-test-deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    return root / "bin"


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FARM_HOME", "FARM_DB_URL", "PYTHONPATH",
                                                            "FARM_PROJECT", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_holds_the_firmware_and_the_hil_suite(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    firmware = _package_files(REPO / "farm" / "firmware")
    assert firmware and firmware <= names, sorted(firmware - names)[:10]
    hil = {f for f in _package_files(REPO / "farm" / "hil") if f.endswith(".py")}
    assert {"farm/hil/conftest.py", "farm/hil/test_sine.py"} <= hil <= names, sorted(hil - names)
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_farm_runs_from_site_packages_not_this_checkout(venv: Path, tmp_path: Path):
    probe = subprocess.run([str(venv / "python"), "-c",
                            "import sys, farm, farm.build.firmware as f, farm.pytest_plugin.suite as s; "
                            "print(farm.__file__); print(f.FIRMWARE_DIR); print(s.HIL_SUITE); print(sys.path)"],
                           cwd=tmp_path, capture_output=True, text=True, env=_env(venv), check=True)
    package, firmware, hil, path = probe.stdout.strip().splitlines()
    root = venv.parent.resolve()
    for where in (package, firmware, hil):
        assert Path(where).resolve().is_relative_to(root), where
        assert not Path(where).resolve().is_relative_to(REPO), where
    assert str(REPO) not in path
    assert (Path(firmware) / "lib" / "harness").is_dir() and (Path(hil) / "test_sine.py").is_file()


def test_installed_farm_measures_a_model_in_a_project_folder(venv: Path, tmp_path: Path):
    project = tmp_path / "my-project"
    project.mkdir()
    shutil.copy(REPO / "devices.yaml", project / "devices.yaml")
    done = subprocess.run([str(venv / "farm"), "run", "--device", "qemu-m3", "--model", "sine", "--variant", "int8",
                           "--json"], cwd=project, capture_output=True, text=True, env=_env(venv), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert (record["device"], record["model"], record["variant"], record["status"]) == ("qemu-m3", "sine", "int8", "ok")
    assert record["bit_exact_fraction"] == 1.0 and record["count_median"] > 0
    assert (project / ".farm" / "results.db").is_file()  # the state folder is the project's
    assert list((project / ".farm").glob("builds/**/firmware.elf")) or list((project / ".farm").rglob("*.elf"))


def test_installed_farm_init_then_nightly_on_an_emulated_board(venv: Path, tmp_path: Path):
    """A team's first hour, installed: ``farm init`` in an empty folder, then a one-model nightly
    (the packaged HIL suite, the project's own test and its budgets) on one emulated board."""
    project = tmp_path / "team"
    project.mkdir()
    init = subprocess.run([str(venv / "farm"), "init"], cwd=project, capture_output=True, text=True,
                          env=_env(venv), timeout=300)
    assert init.returncode == 0, init.stderr[-3000:]
    assert {"tinyfarm.yaml", "devices.yaml", ".gitignore"} <= {p.name for p in project.iterdir()}
    junit = project / "junit.xml"
    night = subprocess.run([str(venv / "farm"), "nightly", "--no-progress", "--scheduler", "in-process",
                            "--junit", str(junit), "-k", "sine and qemu-m3"],
                           cwd=project, capture_output=True, text=True, env=_env(venv), timeout=1800)
    assert night.returncode == 0, (night.stdout[-3000:], night.stderr[-3000:])
    xml = junit.read_text()
    assert "test_sine" in xml and "qemu-m3" in xml  # the packaged suite ran, from site-packages
    assert "budget" in xml  # the project's budgets are tests of their own
    assert 'failures="0"' in xml and 'errors="0"' in xml
    assert (project / ".farm" / "results.db").is_file()
