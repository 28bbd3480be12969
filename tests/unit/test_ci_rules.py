"""CI cannot go green with parts missing: a test that needs a tool or service the set-up
installs skips when it is missing, and FAILS when $CI is set (tests/fixtures_tools.py).

Each case runs a tiny pytest session in a subprocess, in a temp folder, with the rule's
plugin and a PATH that holds only the fake tools the case puts there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fixtures_tools import SETUP_TOOLS, find_tool

REPO = Path(__file__).resolve().parents[2]

SESSION_TESTS = '''
import pytest
from fixtures_tools import require_tool, setup_missing


@pytest.mark.requires_tool("arm-none-eabi-gcc")
def test_marked():
    pass


def test_called():
    assert require_tool("gcc").endswith("gcc")


def test_service():
    setup_missing("no PostgreSQL server for the results-store tests: connection refused")
'''


def _session(tmp_path: Path, *, ci: str | None, tools: tuple[str, ...] = ()) -> tuple[int, dict[str, str], str]:
    """Run SESSION_TESTS; -> (exit code, test name -> passed/failed/error/skipped, output)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["fixtures_tools"]\n')
    (tmp_path / "test_session.py").write_text(SESSION_TESTS)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PATH=str(bin_dir), PYTHONPATH=str(REPO / "tests"))
    if ci is not None:
        env["CI"] = ci
    report = tmp_path / "report.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:tinyfarm", "-rA",
                           f"--junitxml={report}", "test_session.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name", "")] = {"failure": "failed"}.get(kinds[0], kinds[0]) if kinds else "passed"
    return proc.returncode, outcomes, proc.stdout + proc.stderr


def test_without_ci_a_missing_tool_or_service_skips_and_names_it(tmp_path: Path):
    code, outcomes, output = _session(tmp_path, ci=None)
    assert outcomes == {"test_marked": "skipped", "test_called": "skipped", "test_service": "skipped"}, output
    assert code == 0, output
    assert "arm-none-eabi-gcc not found (Debian package gcc-arm-none-eabi)" in output
    assert "gcc not found (Debian package gcc)" in output


def test_with_ci_a_missing_tool_or_service_fails(tmp_path: Path):
    code, outcomes, output = _session(tmp_path, ci="1")
    assert set(outcomes) == {"test_marked", "test_called", "test_service"}, output
    assert "skipped" not in outcomes.values(), output
    assert code == 1, output
    assert "CI must run this test: scripts/setup.sh installs it" in output
    assert "no PostgreSQL server" in output


def test_with_ci_and_the_tools_present_the_tests_run(tmp_path: Path):
    code, outcomes, output = _session(tmp_path, ci="1", tools=("gcc", "arm-none-eabi-gcc"))
    assert outcomes == {"test_marked": "passed", "test_called": "passed", "test_service": "failed"}, output
    assert code == 1, output  # the service is still missing


def test_the_rule_is_active_in_the_projects_own_test_session(request: pytest.FixtureRequest):
    assert request.config.pluginmanager.has_plugin("fixtures_tools")


def test_only_what_the_set_up_installs_is_a_required_tool():
    """Hardware that cannot exist here (a PPK2, a Joulescope) is not a tool of the rule."""
    with pytest.raises(KeyError, match="not a tool scripts/setup.sh installs"):
        find_tool("ppk2")
    block = re.search(r"APT_PACKAGES=\((.*?)\)", (REPO / "scripts" / "setup.sh").read_text(), re.S)
    assert block is not None
    installed = set(block.group(1).split())
    assert {"gcc", "libc6-dev"} <= installed  # the host gcc and its C library headers
    missing = {tool: package for tool, package in SETUP_TOOLS.items() if package not in installed}
    assert not missing, f"tools whose package scripts/setup.sh does not install: {missing}"


def test_ci_runs_exactly_the_readmes_test_command_and_fails_when_no_test_ran(tmp_path: Path):
    ci = (REPO / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "set -euo pipefail" in commands
    assert commands[-1] == "make test"
    assert "make test" in (REPO / "README.md").read_text()
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    empty = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:tinyfarm", "-q"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 5  # no test collected: pytest (so make, so .ci/run) fails
