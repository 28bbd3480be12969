"""The options every `farm` command shares (farm/cli/common.py): `--devices` and `--db` on the
group and every command, the same way; the lease options on every command that uses a board;
model names checked against one list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]
BOARD_COMMANDS = {"run", "infer", "bench", "portability", "profile", "nightly"}


def _commands(group: click.Group, prefix: str = "farm") -> Iterator[tuple[str, click.Command]]:
    """Every command and group under ``group`` (``farm baseline show`` ...), the group included."""
    yield prefix, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def _option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and flag in p.opts), None)


ALL = list(_commands(cli))


def test_the_walk_finds_every_command():
    names = {name for name, _ in ALL}
    assert {"farm devices", "farm models", "farm run", "farm infer", "farm results", "farm nightly", "farm bench",
            "farm portability", "farm compare", "farm baseline", "farm baseline show", "farm baseline pin",
            "farm baseline unpin", "farm report", "farm profile"} <= names


@pytest.mark.parametrize("flag", ["--db", "--devices"])
def test_every_command_takes_db_and_devices_the_same_way(flag: str):
    reference = _option(cli, flag)
    assert reference is not None
    for name, command in ALL:
        option = _option(command, flag)
        assert option is not None, f"`{name}` has no {flag}"
        assert (option.help, option.metavar, option.default, option.expose_value, option.is_eager) == \
            (reference.help, reference.metavar, reference.default, reference.expose_value, reference.is_eager), name
        assert option.callback is not None, name


def test_every_command_that_uses_a_board_takes_the_lease_options():
    by_name = {name.split()[-1]: command for name, command in ALL}
    for name in BOARD_COMMANDS:
        wait, skip = _option(by_name[name], "--lease-wait"), _option(by_name[name], "--skip-busy")
        assert wait is not None and skip is not None, f"`farm {name}` lacks --lease-wait/--skip-busy"
        assert wait.default == 900.0 and wait.metavar == "SECONDS" and skip.is_flag, name


def _db_with_a_run(path: Path) -> str:
    url = f"sqlite:///{path}"
    store = ResultsStore(url)
    store.finish_run(store.start_run("run", None), "passed")
    store.close()
    return url


def _empty_db(path: Path) -> str:
    url = f"sqlite:///{path}"
    ResultsStore(url).close()
    return url


@pytest.fixture
def dbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(a database with one run, an empty one); the state folder's own database is empty too."""
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("FARM_DB_URL", raising=False)
    return _db_with_a_run(tmp_path / "full.db"), _empty_db(tmp_path / "empty.db")


def _results(*args: str) -> int:
    """Exit code of ``farm ... results``: 0 when the database read has a run, 2 when it has none."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output
    return result.exit_code


def test_db_precedence_command_then_group_then_env_then_state_folder(dbs: tuple[str, str],
                                                                    monkeypatch: pytest.MonkeyPatch):
    full, empty = dbs
    assert _results("results") == 2  # the state folder's sqlite: empty
    assert _results("results", "--db", full) == 0
    assert _results("--db", full, "results") == 0  # the group's option
    assert _results("--db", full, "results", "--db", empty) == 2  # the command's wins over the group's
    assert _results("--db", empty, "results", "--db", full) == 0
    monkeypatch.setenv("FARM_DB_URL", full)
    assert _results("results") == 0  # $FARM_DB_URL
    assert _results("results", "--db", empty) == 2  # an option wins over $FARM_DB_URL
    assert _results("--db", empty, "results") == 2


def test_db_reaches_nested_commands(dbs: tuple[str, str]):
    full, empty = dbs
    runner = CliRunner()
    assert runner.invoke(cli, ["baseline", "pin", "latest", "--db", empty]).exit_code == 2
    result = runner.invoke(cli, ["--db", empty, "baseline", "--db", full, "pin", "latest"])
    assert result.exit_code == 0 and "pinned run 1" in result.output, result.output
    assert ResultsStore(full).pinned_baseline() == 1 and ResultsStore(empty).pinned_baseline() is None


def test_devices_precedence_command_then_group_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # no ./devices.yaml here
    runner = CliRunner()
    missing = runner.invoke(cli, ["devices", "--json"])
    assert missing.exit_code == 2 and "devices.yaml: inventory file not found" in missing.output
    good = str(REPO / "devices.yaml")
    assert runner.invoke(cli, ["--devices", good, "devices", "--json"]).exit_code == 0
    assert runner.invoke(cli, ["devices", "--devices", good, "--json"]).exit_code == 0
    result = runner.invoke(cli, ["--devices", good, "devices", "--devices", "other.yaml", "--json"])
    assert result.exit_code == 2 and "other.yaml: inventory file not found" in result.output


def test_devices_reads_leases_from_the_db_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from farm.board.leases import LeaseManager

    monkeypatch.setenv("FARM_HOME", str(tmp_path / "state"))
    url = _empty_db(tmp_path / "leases.db")
    holder = LeaseManager(url, purpose="a manual session")
    holder.acquire("qemu-m3")
    try:
        result = CliRunner().invoke(cli, ["--devices", str(REPO / "devices.yaml"), "devices", "--db", url,
                                          "--json"])
    finally:
        holder.close()
    assert result.exit_code == 0, result.output
    assert '"state": "leased by a manual session' in result.output


@pytest.mark.parametrize("args", [
    ["run", "--model", "nope", "--device", "qemu-m3"],
    ["bench", "--model", "nope", "--device", "qemu-m3"],
    ["portability", "--model", "nope", "--static-only"],
    ["profile", "--model", "nope", "--device", "qemu-m3"],
    ["models", "--model", "nope"],
])
def test_every_command_checks_model_names_against_one_list(args: list[str], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    from farm.models.registry import registered_models

    monkeypatch.setenv("FARM_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("FARM_MODELS", "sine")  # narrows the default set, not the known list
    result = CliRunner().invoke(cli, ["--devices", str(REPO / "devices.yaml"), *args])
    assert result.exit_code == 2, result.output
    assert f"unknown model(s) nope; known: {', '.join(registered_models())}" in " ".join(result.output.split())


def test_a_model_outside_farm_models_is_known(monkeypatch: pytest.MonkeyPatch):
    from farm.cli.common import check_models_and_variants, default_models, known_models

    monkeypatch.setenv("FARM_MODELS", "sine")
    assert default_models() == ["sine"]
    assert "digits" in known_models()
    check_models_and_variants(["digits"], ["int8"])  # named explicitly: available


def test_a_bad_farm_models_is_a_usage_error(monkeypatch: pytest.MonkeyPatch):
    from farm.cli.common import FarmUsageError, default_models

    monkeypatch.setenv("FARM_MODELS", "sine,nope")
    with pytest.raises(FarmUsageError, match="FARM_MODELS names unknown model"):
        default_models()


def test_a_bad_db_is_one_sentence_for_devices_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "state"))
    result = CliRunner().invoke(cli, ["--devices", str(REPO / "devices.yaml"), "devices", "--db", "nonsense"])
    assert result.exit_code == 2 and "not a database URL: 'nonsense'" in result.output, result.output
