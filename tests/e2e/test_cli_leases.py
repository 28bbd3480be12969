"""`farm infer`, `farm portability` and `farm profile` use a board under its lease
(farm.board.leases, taken by farm.board.registry.open_board): while another process
holds the device, `--skip-busy` skips it (exit 1, saying who holds it), and
`--lease-wait SECONDS` waits for it, then proceeds."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from farm.board.leases import LeaseManager
from farm.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[2]
DEVICE = "qemu-m3"
HOLDER = "a long manual session"


@pytest.fixture(scope="module")
def infer_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from farm.config.state import state_dir
    from farm.models import build_variant

    art = build_variant("sine", "int8", state_dir() / "models")
    folder = tmp_path_factory.mktemp("infer")
    np.save(folder / "in.npy", art.test_inputs[:2])
    return art.tflite_path, folder / "in.npy", folder / "out.npy"


def _command(name: str, infer_files: tuple[Path, Path, Path]) -> list[str]:
    if name == "infer":
        tflite, inputs, outputs = infer_files
        return ["infer", str(tflite), "--device", DEVICE, "--input", str(inputs), "--output", str(outputs)]
    if name == "portability":
        return ["portability", "--device", DEVICE, "--model", "sine", "--variant", "int8"]
    return ["profile", "--device", DEVICE, "--model", "sine", "--variant", "int8", "--top", "3"]


def _farm(args: list[str], url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "FARM_DB_URL"}
    return subprocess.Popen([sys.executable, "-m", "farm", *args, "--db", url], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    ResultsStore(url).close()
    return url


@pytest.mark.parametrize("command", ["infer", "portability", "profile"])
def test_a_second_run_skips_or_waits_for_a_held_device(command: str, tmp_path: Path, state_dir: Path,
                                                       infer_files: tuple[Path, Path, Path]):
    url = _database(tmp_path)
    holder = LeaseManager(url, purpose=HOLDER)
    holder.acquire(DEVICE)
    try:
        started = time.monotonic()
        skipping = _farm(_command(command, infer_files) + ["--skip-busy"], url)
        stdout, stderr = skipping.communicate(timeout=600)
        to_busy = time.monotonic() - started  # start-up and (cached) build: then the board, busy
        assert skipping.returncode == 1, stdout + stderr
        assert "Traceback" not in stderr
        assert f"skipped: {DEVICE} is busy: leased by {HOLDER}" in " ".join(stderr.split()), stderr

        # the same with --lease-wait: the holder lets go while the command waits; it proceeds
        delay = to_busy + 1.0
        waiting = _farm(_command(command, infer_files) + ["--lease-wait", str(delay + 30)], url)
        released_at: list[float] = []

        def release() -> None:
            released_at.append(time.time())  # before the release: the waiting run cannot have it earlier
            holder.release(DEVICE)

        timer = threading.Timer(delay, release)
        timer.start()
        stdout, stderr = waiting.communicate(timeout=600)
        timer.join()
    finally:
        holder.close()
    assert waiting.returncode == 0, stdout + stderr
    log = [e for e in LeaseManager(url).log() if e["device"] == DEVICE]
    ours = [e for e in log if e["owner"] != holder.owner]
    assert len(ours) == 1, log  # the skipping run never had it, the waiting one once
    assert ours[0]["acquired_at"] >= released_at[0] - 1e-3, log  # only after the holder let go
    assert f"farm {command}" in (ours[0]["owner_label"] or ""), log


@pytest.mark.parametrize("command", [
    ["run", "--device", DEVICE, "--model", "sine", "--variant", "int8"],
    ["bench", "--device", DEVICE, "--model", "sine", "--variant", "int8"],
])
def test_run_and_bench_skip_a_held_device_the_same_way(command: list[str], tmp_path: Path, state_dir: Path):
    url = _database(tmp_path)
    holder = LeaseManager(url, purpose=HOLDER)
    holder.acquire(DEVICE)
    try:
        process = _farm(command + ["--skip-busy"], url)
        stdout, stderr = process.communicate(timeout=600)
    finally:
        holder.close()
    assert process.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    assert f"skipped: {DEVICE} is busy: leased by {HOLDER}" in " ".join(stderr.split()), stderr
    assert [e["device"] for e in LeaseManager(url).log()] == [DEVICE]  # only the holder's
