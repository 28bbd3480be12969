"""The project file (tinyfarm.yaml, farm/project): its schema, and every bad input through the
real CLI as one message naming file, line and field, exit 2, nothing built or run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from farm.project.current import PROJECT_ENV, activate_project, current_project, deactivate_project, project_path
from farm.project.file import Budgets, ProjectError, load_project

REPO = Path(__file__).resolve().parents[2]
DEVICES = REPO / "devices.yaml"


@pytest.fixture(autouse=True)
def no_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts and ends with no project active (activation is per process)."""
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    deactivate_project()
    yield
    deactivate_project()


@pytest.fixture
def project(tmp_path: Path, model_cache_dir: Path) -> Path:
    """A project folder with a real .tflite (the zoo's sine, float32: one input, one output)
    and test data of the right shape: 10 samples x 1, targets 10 x 1."""
    from farm.models import build_variant

    art = build_variant("sine", "float32", model_cache_dir)
    (tmp_path / "models").mkdir()
    shutil.copy(art.tflite_path, tmp_path / "models" / "sine_f32.tflite")
    (tmp_path / "data").mkdir()
    x = np.linspace(0, 6, 10, dtype=np.float32).reshape(10, 1)
    np.savez(tmp_path / "data" / "test.npz", x=x, y=np.sin(x))
    np.savez(tmp_path / "data" / "wide.npz", x=np.zeros((10, 3), np.float32), y=np.zeros((10, 1), np.float32))
    shutil.copy(DEVICES, tmp_path / "devices.yaml")
    (tmp_path / "tests" / "hil").mkdir(parents=True)
    return tmp_path


GOOD = """\
zoo: [digits]
tests: [tests/hil]
models:
  wave:
    source:
      tflite: {float32: models/sine_f32.tflite}
    data:
      test: data/test.npz
    metric: mae
    measure: {windows: 2}
    budgets:
      latency_us: 5000
      flash_bytes_max: 262144
      portable: true
      variants: {float32: {latency_us: 8000}}
      devices: {qemu-rv32: {latency_us: 40000, ram_bytes_max: 16384}}
"""


def test_a_project_file_loads_into_its_models_budgets_and_tests(project: Path):
    (project / "tinyfarm.yaml").write_text(GOOD)
    loaded = load_project(project / "tinyfarm.yaml", ["qemu-m4f", "qemu-m3", "qemu-rv32"])
    assert loaded.path == (project / "tinyfarm.yaml").resolve()
    assert list(loaded.models) == ["wave"] and loaded.zoo == ("digits",)
    assert loaded.model_names == ["wave", "digits"]
    assert loaded.tests == [project / "tests" / "hil"]
    assert loaded.variants_of("wave") == ("float32",)  # a tflite source: its files' variants
    assert loaded.variants_of("digits") == ("float32", "int8-weights", "dynamic", "int8")
    budgets = loaded.budgets_of("wave")
    assert isinstance(budgets, Budgets) and loaded.budgets_of("digits") is None
    assert budgets.latency_us == 5000 and isinstance(budgets.flash_bytes_max, int) and budgets.portable is True
    # device > variant > model
    assert budgets.limits_for("float32", "qemu-m3").latency_us == 8000
    on_rv32 = budgets.limits_for("float32", "qemu-rv32")
    assert (on_rv32.latency_us, on_rv32.ram_bytes_max, on_rv32.flash_bytes_max) == (40000, 16384, 262144)
    (model,) = loaded.project_models
    assert model.name == "wave" and model.metric == "mae" and model.variants == ("float32",)
    assert model.source.tflite == {"float32": project / "models" / "sine_f32.tflite"}
    assert model.data.test == project / "data" / "test.npz" and dict(model.measure) == {"windows": 2}


def test_activating_registers_the_models_and_exports_the_path(project: Path, monkeypatch: pytest.MonkeyPatch):
    from farm.models import list_models, registered_models
    from farm.models.sources import model_variants

    monkeypatch.delenv("FARM_MODELS", raising=False)
    zoo = list_models()
    (project / "tinyfarm.yaml").write_text(GOOD)
    monkeypatch.chdir(project)
    assert project_path() == (project / "tinyfarm.yaml").resolve()  # ./tinyfarm.yaml
    active = activate_project(project_path())
    assert current_project() is active
    assert os.environ[PROJECT_ENV] == str(active.path)
    assert list_models() == ["wave", "digits"] and "wave" in registered_models()
    assert model_variants("wave") == ("float32",)
    deactivate_project()
    assert list_models() == zoo and "wave" not in registered_models()


def test_the_budgets_keys_are_the_interface(project: Path):
    scalar = ["latency_us", "latency_count", "energy_uj", "accuracy_min", "accuracy_drop_max", "flash_bytes_max",
              "ram_bytes_max", "portable"]
    assert list(Budgets.model_fields) == [*scalar, "variants", "devices"]


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


#: case -> (replace this once in GOOD, with this, the field named, the error's words, the text on its line)
BAD = {
    "missing model file": ("{float32: models/sine_f32.tflite}", "{float32: models/gone.tflite}",
                           "models.wave.source.tflite.float32", "no such file", "gone.tflite"),
    "misspelled budget key": ("      flash_bytes_max: 262144", "      flash_byte_max: 262144",
                              "models.wave.budgets.flash_byte_max", "unknown key 'flash_byte_max' (did you mean "
                              "'flash_bytes_max'?)", "flash_byte_max"),
    "unknown variant": ("    metric: mae\n", "    metric: mae\n    variants: [float32, int9]\n",
                        "models.wave.variants[1]", "unknown variant 'int9' (did you mean 'int8'?)", "int9"),
    "unknown budget variant": ("{float32: {latency_us: 8000}}", "{float23: {latency_us: 8000}}",
                               "models.wave.budgets.variants.float23", "unknown variant 'float23'", "float23"),
    "unknown metric": ("    metric: mae", "    metric: accurracy", "models.wave.metric", "unknown metric 'accurracy'",
                       "accurracy"),
    "budget device not in the inventory": ("{qemu-rv32: {latency", "{qemu-rv33: {latency",
                                           "models.wave.budgets.devices.qemu-rv33",
                                           "device 'qemu-rv33' is not in the inventory (did you mean 'qemu-rv32'?)",
                                           "qemu-rv33"),
    "two sources": ("      tflite: {float32", "      keras: models/m.keras\n      tflite: {float32",
                    "models.wave.source.tflite", "a model has exactly one source; got keras and tflite", "tflite:"),
    "bad data shape": ("test: data/test.npz", "test: data/wide.npz", "models.wave.data.test", "wide.npz",
                       "wide.npz"),
    "unknown zoo example": ("zoo: [digits]", "zoo: [digts]", "zoo[0]", "unknown zoo example 'digts' "
                            "(did you mean 'digits'?)", "digts"),
    "missing test folder": ("tests: [tests/hil]", "tests: [tests/hill]", "tests[0]", "no such test folder",
                            "tests/hill"),
    "duplicate key": ("    metric: mae\n", "    metric: mae\n    metric: mse\n", "models.wave.metric",
                      "duplicate key 'metric'", "metric: mse"),
    "negative budget": ("latency_us: 5000", "latency_us: -5", "models.wave.budgets.latency_us",
                        "greater than or equal to 0", "latency_us: -5"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_message_naming_file_line_field_exit_2(case: str, project: Path):
    old, new, field, words, needle = BAD[case]
    assert GOOD.count(old) == 1, old
    text = GOOD.replace(old, new)
    path = project / "tinyfarm.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["--devices", str(project / "devices.yaml"), "--project", str(path),
                                      "models", "--json"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == "" and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert f"{path.resolve()}:{_line(text, needle)}: {field}:" in message, message
    assert words in message, message


def test_bad_data_shape_says_what_the_model_takes(project: Path):
    path = project / "tinyfarm.yaml"
    path.write_text(GOOD.replace("test: data/test.npz", "test: data/wide.npz"))
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    (issue,) = caught.value.issues
    assert issue.field == "models.wave.data.test", issue
    print(issue.message)
    assert "(10, 3)" in issue.message or "3" in issue.message, issue


def test_a_bad_project_found_in_the_current_directory_stops_every_command(project: Path):
    """The real process: ./tinyfarm.yaml is found without --project; exit 2, no traceback, nothing run."""
    text = GOOD.replace("      flash_bytes_max: 262144", "      flash_byte_max: 262144")
    (project / "tinyfarm.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != PROJECT_ENV}
    proc = subprocess.run([sys.executable, "-m", "farm", "devices"], cwd=project, capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    path = (project / "tinyfarm.yaml").resolve()
    assert f"{path}:{_line(text, 'flash_byte_max')}: models.wave.budgets.flash_byte_max:" in \
        " ".join(proc.stderr.split())


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (PROJECT_ENV, "FARM_MODELS")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_a_pytest_session_takes_farm_project(project: Path):
    """--farm-project (and ./tinyfarm.yaml without it): the project is active before collection
    (a module-level list_models() sees its models); a bad one is a usage error naming file,
    line and field."""
    (project / "tinyfarm.yaml").write_text(GOOD)
    tests = project / "tests" / "hil"
    (tests / "test_models.py").write_text(
        "from farm.models import list_models\n"
        "MODELS = list_models()\n\n"
        "def test_sees_the_project():\n"
        "    assert MODELS == ['wave', 'digits'], MODELS\n")
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    proc = _pytest(elsewhere, str(tests), f"--farm-project={project / 'tinyfarm.yaml'}",
                   f"--farm-devices={project / 'devices.yaml'}")
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert _pytest(project, str(tests)).returncode == 0  # found as ./tinyfarm.yaml
    (project / "tinyfarm.yaml").write_text(GOOD.replace("metric: mae", "metric: accurracy"))
    proc = _pytest(elsewhere, str(tests), f"--farm-project={project / 'tinyfarm.yaml'}")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert f"tinyfarm.yaml:{_line(GOOD, 'metric: mae')}: models.wave.metric: unknown metric" in proc.stderr


def _commands(group: click.Group, prefix: str = "farm") -> Iterator[tuple[str, click.Command]]:
    yield prefix, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def test_every_command_takes_project_the_same_way():
    reference = next(p for p in cli.params if "--project" in getattr(p, "opts", ()))
    for name, command in _commands(cli):
        option = next((p for p in command.params if "--project" in getattr(p, "opts", ())), None)
        assert option is not None, f"`{name}` has no --project"
        assert (option.help, option.default, option.expose_value) == \
            (reference.help, reference.default, reference.expose_value), name


def test_no_project_is_the_zoo_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert project_path() is None and activate_project(None) is None and current_project() is None


def test_the_repos_own_project_includes_the_whole_zoo():
    from farm.project.file import zoo_models

    loaded = load_project(REPO / "tinyfarm.yaml")
    assert sorted(loaded.zoo) == sorted(zoo_models()) == ["ad", "digits", "ic", "kws", "sine", "vww"]


def test_farm_init_ships_the_default_inventory():
    from farm.project.init import template

    assert template("devices.yaml") == DEVICES.read_text()


def test_a_job_carries_the_project_to_a_worker_that_has_none(project: Path):
    """farm.scale: a MeasureSpec made under a project carries its path; a fresh process (a Dask
    worker of another environment, `farm worker`) activates it before it builds."""
    from farm.board.leases import LeasePolicy
    from farm.config.inventory import load_inventory
    from farm.scale.jobs import MeasureSpec

    (project / "tinyfarm.yaml").write_text(GOOD)
    active = activate_project(project / "tinyfarm.yaml", export=False)
    device = load_inventory(project / "devices.yaml").devices[0]
    spec = MeasureSpec(device, "wave", "float32", LeasePolicy("sqlite://"))
    assert spec.project == str(active.path)
    code = ("import sys; from farm.scale.jobs import enter_project; from farm.models import list_models; "
            "assert 'wave' not in list_models(); enter_project(sys.argv[1]); print(list_models())")
    env = {k: v for k, v in os.environ.items() if k not in (PROJECT_ENV, "FARM_MODELS")}
    proc = subprocess.run([sys.executable, "-c", code, spec.project], cwd=project / "tests", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "['wave', 'digits']", proc.stderr


def test_planning_follows_the_models_declared_variants_and_skips_empty_parameter_sets(project: Path):
    """farm.pytest_plugin.planning: a project's model is planned for its own variants only; an
    empty parametrize list (a project that includes no other zoo model: pytest's NOTSET) plans
    nothing."""
    from types import SimpleNamespace

    from _pytest.compat import NOTSET

    from farm.config.inventory import load_inventory
    from farm.pytest_plugin.planning import planned_measurements

    (project / "tinyfarm.yaml").write_text(GOOD)
    activate_project(project / "tinyfarm.yaml", export=False)
    device = load_inventory(project / "devices.yaml").devices[0]

    def loops_over_variants(measure):  # names the model, loops over every variant
        return [measure("wave", v) for v in ("float32", "int8-weights", "dynamic", "int8")]

    def item(params: dict, function=loops_over_variants) -> SimpleNamespace:
        return SimpleNamespace(fixturenames=("device", "measure"), function=function,
                               callspec=SimpleNamespace(params={"device": device, **params}))

    plan = planned_measurements([item({}), item({"model": NOTSET, "variant": NOTSET}), item({"model": NOTSET})])
    assert [(d.name, m, v) for d, m, v in plan] == [(device.name, "wave", "float32")]
