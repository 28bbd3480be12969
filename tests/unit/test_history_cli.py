"""History on crafted results: `farm compare`, `farm baseline`, `farm report` — and the report
rendered in headless Chromium, with its plots checked there.

A results database gets a few nightlies of the emulated default (figures as the
nightly measures them), judged like `farm nightly` judges them; the last one has a
deliberate regression (a slower int8 kernel on qemu-m3, a float32 build that now
faults on qemu-rv32, flash growth on qemu-m4f). The end-to-end nightlies on QEMU
are in test_nightly_e2e.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from farm.judge.regression import judge
from farm.store.results import ResultRecord, ResultsStore
from farm.config.thresholds import defaults
from fixtures_tools import setup_missing

REPO = Path(__file__).resolve().parents[2]
#: (device, variant) -> (count, flash, ram, float kind) as measured on the emulated default
FIGURES = {
    ("qemu-m4f", "float32"): (2767, 6672, 10720, "hard-float"),
    ("qemu-m4f", "int8-weights"): (3744, 6016, 10720, "hard-float"),
    ("qemu-m4f", "int8"): (4335, 6032, 10624, "float-free"),
    ("qemu-m3", "float32"): (26632, 8000, 10720, "soft-float"),
    ("qemu-m3", "int8-weights"): (43808, 7360, 10720, "soft-float"),
    ("qemu-m3", "int8"): (4338, 5856, 10624, "float-free"),
    ("qemu-rv32", "float32"): (52953, 8884, 3552, "soft-float"),
    ("qemu-rv32", "int8-weights"): (96852, 8404, 3552, "soft-float"),
    ("qemu-rv32", "int8"): (4824, 6228, 3456, "float-free"),
}
UA = {"qemu-m4f": (100, 3.3, 25e6), "qemu-m3": (200, 3.3, 25e6), "qemu-rv32": (110, 1.8, 320e6)}
SIZE = {"float32": 3092, "int8-weights": 2864, "int8": 2592}
MAE = {"float32": 0.0342, "int8-weights": 0.0259, "int8": 0.0250}


def result(device: str, variant: str, **changes: object) -> ResultRecord:
    count, flash, ram, kind = FIGURES[(device, variant)]
    ua, volts, clock = UA[device]
    r = ResultRecord(
        device=device, model="sine", variant=variant, status="ok", unit="instructions", count_median=float(count),
        count_min=count, count_max=count, windows=5, window_counts=[float(count)] * 5,
        latency_us=count / clock * 1e6, latency_is_estimate=True, energy_uj=count * volts * ua * 1e-12 * 1e6,
        energy_source=f"modelled: {ua} uA/MHz x {volts} V x instructions (datasheet model, not measured)",
        metric="mae", accuracy_device=MAE[variant], accuracy_host=MAE[variant],
        bit_exact_fraction=1.0 if variant == "int8" else None, max_abs_error=0.0 if variant == "int8" else 4.2e-7,
        flash_bytes=flash, ram_bytes=ram, model_size_bytes=SIZE[variant], model_sha256=f"{variant:0<64}"[:64],
        elf_sha256=f"{device}{variant}".ljust(64, "0"), compiler="arm-none-eabi-gcc 12.2.1",
        compiler_flags="-mcpu=cortex-m3 -mthumb -O2", details={"firmware_cached": True, "float_kind": kind},
    )
    return dataclasses.replace(r, **changes)


def nightly(store: ResultsStore, changed: dict[tuple[str, str], dict[str, object]] | None = None,
            status: str = "passed") -> int:
    run_id = store.start_run("nightly", "0123456789abcdef")
    for device, variant in FIGURES:
        store.add_result(run_id, result(device, variant, **(changed or {}).get((device, variant), {})))
    comparison = judge(store, run_id, defaults())
    store.update_run_details(run_id, tests={"passed": 64}, measured=9, firmware_built=0, firmware_cached=9,
                             seconds=11.0)
    store.finish_run(run_id, "failed" if comparison.regressions else status)
    return run_id


IMPROVED = {("qemu-m4f", "float32"): {"count_median": 2700.0, "window_counts": [2700.0] * 5}}
REGRESSED = {
    **IMPROVED,
    ("qemu-m3", "int8"): {"count_median": 5100.0, "window_counts": [5100.0] * 5, "elf_sha256": "f" * 64},
    ("qemu-rv32", "float32"): {"status": "faulted", "count_median": None, "energy_uj": None, "latency_us": None,
                               "accuracy_device": None, "message": "Load access fault at 0x80004000 in "
                               "fully_connected_f32 (mtval 0x80004000)"},
    ("qemu-m4f", "int8"): {"flash_bytes": 6600},
}


@pytest.fixture
def history(tmp_path: Path) -> tuple[str, list[int]]:
    db = f"sqlite:///{tmp_path / 'results.db'}"
    store = ResultsStore(db)
    runs = [nightly(store) for _ in range(3)]
    runs.append(nightly(store, IMPROVED))  # faster: an improvement, and the new baseline
    runs.append(nightly(store, REGRESSED))
    store.close()
    return db, runs


def farm(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_DB_URL": db}
    return subprocess.run([sys.executable, "-m", "farm", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_the_regressed_nightly_is_judged_against_the_last_passing_one(history: tuple[str, list[int]]):
    db, runs = history
    store = ResultsStore(db)
    last = store.run(runs[-1])
    assert (last.status, last.baseline_id, last.regressions) == ("failed", runs[-2], 3)
    bad = {(f.device, f.variant, f.metric) for f in store.findings_for_run(runs[-1]) if f.severity == "regression"}
    assert bad == {("qemu-m3", "int8", "count"), ("qemu-rv32", "float32", "status"), ("qemu-m4f", "int8", "flash")}
    # the failed night is never a baseline: the next one is compared with runs[-2] again
    again = nightly(store, REGRESSED)
    assert store.run(again).baseline_id == runs[-2] and store.run(again).regressions == 3


def test_compare_names_each_regression_and_exits_1(history: tuple[str, list[int]]):
    db, runs = history
    proc = farm("compare", str(runs[-2]), str(runs[-1]), db=db)
    assert proc.returncode == 1, proc.stderr
    text = " ".join(proc.stdout.split())
    for needle in ("regression", "qemu-m3", "4,338", "5,100", "+17.6%", "qemu-rv32", "faulted",
                   "was ok, now faulted: Load access fault", "6,032 B", "6,600 B", "+9.4%",
                   "3 regressions"):
        assert needle in text, needle
    ok = farm("compare", str(runs[0]), str(runs[1]), db=db)
    assert ok.returncode == 0 and "no change in any metric" in ok.stdout


def test_compare_json(history: tuple[str, list[int]]):
    db, runs = history
    proc = farm("compare", str(runs[-2]), str(runs[-1]), "--json", db=db)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["baseline"]["id"] == runs[-2] and data["current"]["id"] == runs[-1]
    assert data["regressions"] == 3 and data["counts"]["regression"] == 3
    count = next(f for f in data["findings"] if f["metric"] == "count" and f["severity"] == "regression")
    assert (count["device"], count["model"], count["variant"], count["before"], count["after"]) == (
        "qemu-m3", "sine", "int8", 4338.0, 5100.0)
    assert count["change_pct"] == pytest.approx(17.566, abs=1e-3) and count["unit"] == "instructions"
    assert count["sentence"].startswith("qemu-m3 sine/int8 count per inference: 4,338 -> 5,100 instructions")
    # default: baseline (the last passing nightly) -> latest
    default = json.loads(farm("compare", "--json", db=db).stdout)
    assert (default["baseline"]["id"], default["current"]["id"]) == (runs[-2], runs[-1])


def test_baseline_pin_show_unpin(history: tuple[str, list[int]]):
    db, runs = history
    shown = farm("baseline", "show", "--json", db=db)
    assert json.loads(shown.stdout)["baseline"]["id"] == runs[-2]
    pinned = farm("baseline", "pin", str(runs[0]), db=db)
    assert pinned.returncode == 0 and f"pinned run {runs[0]}" in pinned.stdout
    show = farm("baseline", "show", db=db)
    assert f"baseline: run {runs[0]}" in show.stdout and "pinned" in show.stdout
    # the next nightly is compared with the pinned run
    store = ResultsStore(db)
    run = nightly(store)
    assert store.run(run).baseline_id == runs[0]
    assert json.loads(farm("compare", "--json", db=db).stdout)["baseline"]["id"] == runs[0]
    unpinned = farm("baseline", "unpin", db=db)
    assert unpinned.returncode == 0 and f"unpinned run {runs[0]}" in unpinned.stdout
    assert json.loads(farm("baseline", "show", "--json", db=db).stdout)["baseline"]["id"] == run
    bad = farm("baseline", "pin", "9999", db=db)
    assert bad.returncode == 2 and "no run with id 9999" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_database_url_and_thresholds_are_one_sentence(history: tuple[str, list[int]], tmp_path: Path):
    db, _ = history
    proc = farm("compare", "--db", "postgresql://farm@127.0.0.1:1/farm", db=db)
    assert proc.returncode == 2 and "cannot open the results database" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = tmp_path / "t.toml"
    bad.write_text("[count]\nfail = 1\n")
    proc = farm("compare", "--thresholds", str(bad), db=db)
    assert proc.returncode == 2 and "count.fail: unknown key" in proc.stderr


# --------------------------------------------------------------------------- the HTML report in Chromium

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        setup_missing("headless Chromium is needed to render the report (Debian chromium)")
    return path


def render(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def test_report_is_self_contained_and_its_plots_render_in_chromium(history: tuple[str, list[int]], tmp_path: Path):
    db, runs = history
    out = tmp_path / "report.html"
    proc = farm("report", "--run", str(runs[-1]), "--output", str(out), db=db)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    # self-contained: no scripts, stylesheets, images or fonts from anywhere
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.I)
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", page, re.I)
    assert "url(http" not in page

    dom = render(out, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    figures = re.findall(r'<figure class="plot[^"]*" id="([^"]+)"[^>]*>(.*?)</figure>', html, re.S)
    ids = {fid for fid, _ in figures}
    assert {"plot-triad-sine", "plot-speedup-sine", "plot-energy-sine", "plot-trend-count-sine",
            "plot-trend-flash-sine", "plot-trend-ram-sine", "plot-trend-accuracy-sine",
            "plot-trend-energy-sine"} <= ids
    for fid, body in figures:  # every plot is a real SVG drawing in the rendered DOM
        assert "<svg" in body and body.count("<path") > 10, fid
    trend = dict(figures)["plot-trend-count-sine"]
    assert "regression +17.6%" in trend and "faulted" in trend  # regressions marked on the trend
    marked = re.search(r'id="plot-trend-count-sine" data-plot="[^"]+" data-regressions="(\d+)"', html)
    assert marked is not None and int(marked.group(1)) == 2  # qemu-m3 int8 slower, qemu-rv32 float32 faulted
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    for needle in ("FAILED: 3 regressions", "qemu-m3 sine/int8 count per inference: 4,338 -> 5,100 instructions",
                   "qemu-rv32 sine/float32 status: ok -> faulted", "Portability matrix", "soft-float",
                   "float-free", "modelled: 200 uA/MHz x 3.3 V", "Provenance of each result", "5.22x",
                   "Trends over the last 5 nightlies"):
        assert needle in text, needle

    shot = tmp_path / "report.png"
    shown = render(out, tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars")
    assert shown.returncode == 0 and shot.is_file(), shown.stderr[-2000:]
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(shot)[:, :, :3]
    colours = {tuple(c) for c in (pixels[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3)}
    assert len(colours) > 200  # the bar charts' colours are on screen, not a blank page
    blue = np.all(np.abs(pixels * 255 - (0x4C, 0x72, 0xB0)) < 8, axis=-1)  # the float32 bars
    assert blue.sum() > 2000
