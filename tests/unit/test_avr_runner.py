"""The simavr runner is built from its source with the host compiler, cached by its hash.

A host compile of one small C file against libsimavr (no firmware, no emulator run).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from farm.board import simavr_runner
from farm.board.simavr_runner import RUNNER_SOURCE, ensure_runner, runner_hash

pytestmark = pytest.mark.requires_tool("gcc", "simavr")


def test_the_runner_is_built_once_per_source_hash(tmp_path: Path):
    binary = ensure_runner(tmp_path)
    assert binary == tmp_path / "tools" / f"simavr-runner-{runner_hash()}" / "simavr-runner"
    built = binary.stat().st_mtime_ns
    assert ensure_runner(tmp_path) == binary and binary.stat().st_mtime_ns == built  # cached, not rebuilt
    usage = subprocess.run([str(binary)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: simavr-runner --mcu NAME --freq HZ" in usage.stderr
    unknown = subprocess.run([str(binary), "--mcu", "atmega328x", "--freq", "16000000", str(RUNNER_SOURCE)],
                             capture_output=True, text=True)
    assert unknown.returncode == 2 and "simavr has no mcu atmega328x" in unknown.stderr


def test_an_edited_runner_source_is_a_new_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    edited = tmp_path / "runner.c"
    edited.write_text(RUNNER_SOURCE.read_text() + "\n/* edited */\n")
    before = runner_hash()
    monkeypatch.setattr(simavr_runner, "RUNNER_SOURCE", edited)
    assert runner_hash() != before
    assert ensure_runner(tmp_path / "state").parent.name == f"simavr-runner-{runner_hash()}"


def test_a_compile_error_is_reported_with_the_compilers_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    broken = tmp_path / "runner.c"
    broken.write_text("int main(void) { return undeclared; }\n")
    monkeypatch.setattr(simavr_runner, "RUNNER_SOURCE", broken)
    with pytest.raises(simavr_runner.RunnerBuildError) as info:
        ensure_runner(tmp_path / "state")
    assert "building the simavr runner failed" in str(info.value) and "undeclared" in str(info.value)
    assert not list((tmp_path / "state" / "tools").glob("*/simavr-runner"))
