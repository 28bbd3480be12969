"""Issue 12's acceptance: a team's own model, its data and its budgets, through `farm nightly`.

In a fresh directory outside the checkout: ``farm init``; a small Keras model (64 -> 16 -> 10,
a few KB) trained here on scikit-learn's bundled 8x8 digits, saved as a SavedModel directory
and as a ``.keras`` file; both declared in the project file with their test data (``.npz``),
a representative set and budgets (latency, energy, accuracy and its drop against float32,
flash, RAM, portability; a per-board override). Then:

- ``farm nightly`` measures all four variants of both models on the three emulated boards,
  stores them, prints the seed's size table, writes them and the budgets table into the HTML
  report, names every budget test model-variant-board-budget in the JUnit XML, and passes;
- one budget made impossible (digits-keras int8: 1 µs) fails the nightly, and each failing
  test is named, with its sentence, in the terminal, the JUnit XML and the HTML report.

The nightlies run the way a user runs them: in the project's directory, its own state folder
(``.farm/``), the default scheduler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from farm.config.variants import VARIANTS
from farm.store.results import ResultsStore

pytestmark = pytest.mark.requires_tool("qemu-system-arm", "qemu-system-riscv32", "arm-none-eabi-gcc",
                                       "riscv64-unknown-elf-gcc")

BOARDS = ("qemu-m4f", "qemu-m3", "qemu-rv32")
MODELS = ("digits-saved", "digits-keras")

#: trains the user's model in the project (a subprocess: TensorFlow stays out of the test process)
TRAIN = textwrap.dedent("""\
    import sys
    from pathlib import Path

    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    root = Path(sys.argv[1])
    (root / "models").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=8, batch_size=32, verbose=0)
    model.save(root / "models" / "digits_mlp.keras")
    model.export(str(root / "models" / "digits_mlp_saved"), verbose=False)
    np.savez(root / "data" / "test.npz", x=x[1500:1548], y=y[1500:1548])
    np.save(root / "data" / "representative.npy", x[:64])
""")

PROJECT = textwrap.dedent("""\
    # the team's models (written after `farm init`, in place of its sine example)
    zoo: []
    tests: [tests/hil]
    models:
      digits-saved:
        source: {saved_model: models/digits_mlp_saved}
        data: {test: data/test.npz, representative: data/representative.npy}
        metric: accuracy
        budgets:
          latency_us: 20000
          energy_uj: 500
          accuracy_min: 0.7
          accuracy_drop_max: 0.1
          flash_bytes_max: 262144
          ram_bytes_max: 16384
          portable: true
          devices: {qemu-rv32: {latency_us: 5000}}
      digits-keras:
        source: {keras: models/digits_mlp.keras}
        data: {test: data/test.npz, representative: data/representative.npy}
        metric: accuracy
        budgets:
          latency_us: 20000
          accuracy_min: 0.7
          accuracy_drop_max: 0.1
          flash_bytes_max: 262144
          portable: true
    """)

#: the team's own HIL test (in place of farm init's sine tests)
OWN_TEST = textwrap.dedent("""\
    def test_int8_bit_exact_on_the_board(device, measure):
        r = measure("digits-keras", "int8")
        assert r.status == "ok", f"{device.name}: {r.status}: {r.message}"
        assert r.bit_exact_fraction == 1.0
    """)

#: the impossible budget of the second nightly
IMPOSSIBLE = "      variants: {int8: {latency_us: 1}}\n"
FAILING = [f"digits-keras-int8-{board}-latency_us" for board in BOARDS]


def farm(project: Path, *args: str, timeout: float = 2400) -> subprocess.CompletedProcess[str]:
    """``farm ARGS`` in the project's directory, as its user runs it (no test-session settings)."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "FARM_HOME", "FARM_DB_URL", "FARM_PROJECT", "FARM_MODELS", "FARM_THRESHOLDS", "FARM_SCHEDULER")}
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=timeout)


def flat(text: str) -> str:
    return " ".join(text.split())


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in ET.parse(path).getroot().iter("testcase")}


def section(page: str, name: str) -> str:
    return page.split(f"<section id='{name}'>")[1].split("</section>")[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("team-project")
    done = farm(root, "init", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "tinyfarm.yaml").is_file() and (root / "devices.yaml").is_file()
    inventory = yaml.safe_load((root / "devices.yaml").read_text())  # the team keeps the three QEMU boards
    inventory["devices"] = [d for d in inventory["devices"] if d["name"] in BOARDS]
    assert [d["name"] for d in inventory["devices"]] == list(BOARDS)
    (root / "devices.yaml").write_text("# the emulated Arm and RISC-V boards of farm init's inventory\n"
                                       + yaml.safe_dump(inventory, sort_keys=False))
    trained = subprocess.run([sys.executable, "-c", TRAIN, str(root)], capture_output=True, text=True, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (root / "tinyfarm.yaml").write_text(PROJECT)
    for test in (root / "tests" / "hil").glob("test_*.py"):
        test.unlink()
    (root / "tests" / "hil" / "test_team_model.py").write_text(OWN_TEST)
    return root


def test_the_nightly_measures_the_teams_models_and_passes(project: Path) -> None:
    done = farm(project, "nightly", "--no-progress", "--junit", "first.xml", "--report", "first.html")
    out = flat(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "PASSED" in out

    # stored: every variant of both models on the three boards, in the project's own state folder
    store = ResultsStore(f"sqlite:///{project / '.farm' / 'results.db'}")
    run = store.latest_run("nightly")
    assert run is not None and run.status == "passed"
    records = store.results_for_run(run.id)
    measured = {(r.device, r.model, r.variant): r for r in records}
    wanted = {(b, m, v) for b in BOARDS for m in MODELS for v in VARIANTS}
    assert wanted <= set(measured), sorted(wanted - set(measured))
    for key in wanted:
        r = measured[key]
        assert r.status == "ok", f"{key}: {r.status}: {r.message}"
        assert r.unit == "instructions" and r.count_median > 0 and r.accuracy_device >= 0.7
    assert all(measured[(b, m, "int8")].bit_exact_fraction == 1.0 for b in BOARDS for m in MODELS)

    # every budget is a test, stored with the run, and held
    budgets = (run.details or {}).get("budgets") or {}
    assert len(budgets) == (7 * 4 - 1) * 3 + (5 * 4 - 1) * 3, sorted(budgets)  # no float32 drop against itself
    assert all(v["passed"] for v in budgets.values()), [v["sentence"] for v in budgets.values() if not v["passed"]]
    rv32 = budgets["digits-saved-int8-qemu-rv32-latency_us"]
    assert rv32["limit_text"] == "5,000 µs" and "instructions at 320 MHz" in rv32["measured_text"]
    assert "modelled" in budgets["digits-saved-int8-qemu-m3-energy_uj"]["measured_text"]
    cases = junit_cases(project / "first.xml")
    for test_id in budgets:
        case = cases[f"test_budget[{test_id}]"]
        assert case.find("failure") is None and case.find("skipped") is None, test_id
    assert cases["test_int8_bit_exact_on_the_board[qemu-rv32]"].find("failure") is None  # the team's own test

    # the seed's size table: the SavedModel directory / .keras file, then each variant's .tflite
    tables = (run.details or {}).get("size_tables") or {}
    assert set(tables) == set(MODELS)
    for model, source in (("digits-saved", "SavedModel"), ("digits-keras", ".keras")):
        rows = tables[model]
        assert source in rows[0]["label"] and rows[0]["ratio"] is None and rows[0]["bytes"] > 10_000
        assert [r["label"] for r in rows[1:]] == [f"{v} .tflite" for v in VARIANTS]
        assert all(0 < r["ratio"] < 1 for r in rows[1:]), rows
        assert f"{model}: model size, source and each variant" in out
    assert "all 138 budgets held" in out

    page = (project / "first.html").read_text()
    table = section(page, "budgets")
    assert table.count("budget-pass") == 138 and "budget-fail" not in table
    assert "<td>digits-saved</td><td>int8</td><td>qemu-rv32</td><td><code>latency_us</code></td>" in table
    sizes = section(page, "sizes")
    assert "SavedModel" in sizes and ".keras" in sizes and sizes.count("int8 .tflite") == 2
    triad = section(page, "triad")
    assert all(f"<h3>{m}</h3>" in triad for m in MODELS)


def test_an_impossible_budget_fails_the_nightly_and_is_named(project: Path) -> None:
    text = (project / "tinyfarm.yaml").read_text()
    anchor = "      flash_bytes_max: 262144\n      portable: true\n"
    assert text.endswith(anchor)
    (project / "tinyfarm.yaml").write_text(text + IMPOSSIBLE)  # digits-keras int8: at most 1 µs
    done = farm(project, "nightly", "--no-progress", "-k", "test_budget and digits-keras", "--junit", "second.xml",
                "--report", "second.html")
    out = flat(done.stdout)
    assert done.returncode == 1, done.stdout[-6000:] + done.stderr[-3000:]
    assert "FAILED" in out and "3 of 57 budgets broken" in out
    for test_id in FAILING:  # the terminal: pytest's failure line and the verdict's
        board = test_id.split("-int8-")[1].rsplit("-latency_us")[0]
        assert f"test_budget[{test_id}]" in out
        assert f"BUDGET digits-keras/int8 on {board}: latency " in out and f"({test_id})" in out
    assert "> budget 1 µs" in out

    cases = junit_cases(project / "second.xml")
    for name, case in cases.items():
        if not name.startswith("test_budget["):
            continue
        failure = case.find("failure")
        if name[len("test_budget["):-1] in FAILING:
            assert failure is not None, name
            assert "digits-keras/int8 on" in (failure.get("message") or "") + (failure.text or "")
            assert "> budget 1 µs" in (failure.get("message") or "") + (failure.text or "")
        else:
            assert failure is None, name

    page = (project / "second.html").read_text()
    verdict = section(page, "verdict")
    assert "3 budgets broken" in verdict and all(t in verdict for t in FAILING)
    table = section(page, "budgets")
    assert table.count("budget-fail") == 3 and table.count("budget-pass") == 54
    assert "<td>digits-keras</td><td>int8</td><td>qemu-m3</td><td><code>latency_us</code></td>" \
           "<td class='num'>1 µs</td>" in table
