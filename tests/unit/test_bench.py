"""`farm bench`: the figures' arithmetic (no board), and the command end to end on one model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]


def _record(status: str, count: float | None, **extra):
    return SimpleNamespace(status=status, message=extra.get("message"), unit="instructions", count_median=count,
                           latency_us=count / 25.0 if count else None, latency_is_estimate=True,
                           flash_bytes=1000, ram_bytes=500, metric="accuracy", accuracy_device=0.9,
                           accuracy_host=0.9, bit_exact_fraction=1.0, max_abs_error=0.0)


def test_rows_speedups_and_markdown(monkeypatch, tmp_path):
    from farm.measure import bench

    monkeypatch.setattr(bench, "model_figures", lambda model, variant, state, kernels: bench.ModelFigures(
        model=model, variant=variant, macs=1000, arena_bytes=640, tflm_arena_bytes=3000, tflm_tensor_arena_bytes=640,
        model_size_bytes=5000, const_bytes=2000, latency_only=False))
    counts = {("m3", "float32"): 80_000, ("m3", "int8-weights"): 100_000, ("m3", "dynamic"): 40_000,
              ("m3", "int8"): 16_000,
              ("rv", "float32"): None, ("rv", "int8-weights"): None, ("rv", "dynamic"): None, ("rv", "int8"): 12_000}
    devices = [SimpleNamespace(name="m3", flash_bytes=4 << 20, ram_bytes=4 << 20),
               SimpleNamespace(name="rv", flash_bytes=12 << 20, ram_bytes=16384)]

    def measure(device, model, variant):
        count = counts[device.name, variant]
        if count is None:
            return _record("does-not-fit", None, message="RAM: needs 20000 bytes, rv has 16384")
        return _record("ok", count)

    rows = bench.run_bench(devices, ["digits"], state=tmp_path, measure=measure)
    by = {(r.device, r.variant): r for r in rows}
    assert by["m3", "int8"].count_per_mac == 16.0 and by["m3", "int8"].speedup_vs_float32 == 5.0
    assert by["m3", "int8-weights"].speedup_vs_float32 == pytest.approx(0.8)
    assert by["rv", "int8"].speedup_vs_float32 is None and by["rv", "float32"].status == "does-not-fit"
    summary = {(s["model"], s["device"]): s for s in bench.speedups(rows)}
    assert summary["digits", "m3"]["int8_vs_float32"] == 5.0 and summary["digits", "rv"]["int8_vs_float32"] is None
    assert summary["digits", "m3"]["dynamic_vs_float32"] == 2.0
    assert summary["digits", "m3"]["int8_weights_vs_float32"] == pytest.approx(0.8)
    table = bench.markdown_table(rows)
    assert "| digits | int8 | 1,000 | 16,000 (16.0) | 12,000 (12.0) |" in table
    assert "| digits | float32 | 1,000 | 80,000 (80.0) | does not fit (RAM 20,000 B > 16,384) |" in table
    assert "int8-weights, dynamic, int8 speedup over float32" in table
    assert "| model | m3 int8-weights | m3 dynamic | m3 int8 | rv int8-weights | rv dynamic | rv int8 |" in table
    assert "| digits | 0.80x | 2.00x | 5.00x | — | — | — |" in table
    # no stack figures in these records: the stack table says so
    assert "| digits | int8 | — / — / — (—) | — / — / — (—) |" in table


def test_stack_figures_go_into_the_row_and_the_table(monkeypatch, tmp_path):
    from farm.measure import bench

    monkeypatch.setattr(bench, "model_figures", lambda model, variant, state, kernels: bench.ModelFigures(
        model=model, variant=variant, macs=1000, arena_bytes=640, tflm_arena_bytes=3000, tflm_tensor_arena_bytes=640,
        model_size_bytes=5000, const_bytes=2000, latency_only=False))
    devices = [SimpleNamespace(name="m3", flash_bytes=4 << 20, ram_bytes=4 << 20)]

    def measure(device, model, variant):
        record = _record("ok", 16_000)
        record.stack_used_bytes, record.stack_bound_bytes, record.stack_reserved_bytes = 340, 540, 672
        return record

    (row,) = bench.run_bench(devices, ["sine"], state=tmp_path, variants=["int8"], measure=measure)
    assert (row.stack_used_bytes, row.stack_bound_bytes, row.stack_reserved_bytes) == (340, 540, 672)
    assert row.model_ram_with_stack_bytes == 640 + 672 and row.to_json()["stack_bound_bytes"] == 540
    assert "| sine | int8 | 540 / 340 / 672 (1,312) |" in bench.markdown_table([row])


def test_markdown_says_tflm_refuses_a_hybrid_model(monkeypatch, tmp_path):
    from farm.measure import bench

    monkeypatch.setattr(bench, "model_figures", lambda model, variant, state, kernels: bench.ModelFigures(
        model=model, variant=variant, macs=1000, arena_bytes=640, model_size_bytes=5000, const_bytes=2000,
        latency_only=False, tflm_arena_bytes=None if variant == "dynamic" else 3000,
        tflm_tensor_arena_bytes=None if variant == "dynamic" else 640))
    device = SimpleNamespace(name="m3", flash_bytes=4 << 20, ram_bytes=4 << 20)
    rows = bench.run_bench([device], ["digits"], state=tmp_path, variants=["float32", "dynamic"],
                           measure=lambda device, model, variant: _record("ok", 1000))
    table = bench.markdown_table(rows)
    assert "| digits | dynamic | 5,000 | 1,000 | 500 | 640 | TFLM refuses (hybrid) |" in table
    assert "| digits | float32 | 5,000 | 1,000 | 500 | 640 | 3,000 (640) |" in table


@pytest.mark.e2e
def test_farm_bench_json_on_digits(state_dir: Path):
    """The reduced benchmark CI runs: one model, every variant, on the FPU-less Cortex-M3."""
    proc = subprocess.run([sys.executable, "-m", "farm", "bench", "--json", "--model", "digits",
                           "--device", "qemu-m3"], cwd=REPO, capture_output=True, text=True, env=dict(os.environ),
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    rows = {r["variant"]: r for r in doc["rows"]}
    assert set(rows) == {"float32", "int8-weights", "dynamic", "int8"} and doc["run_id"] > 0
    for variant, r in rows.items():
        assert (r["model"], r["device"], r["status"], r["unit"]) == ("digits", "qemu-m3", "ok", "instructions")
        for key in ("count_per_inference", "count_per_mac", "flash_bytes", "ram_bytes", "macs", "arena_bytes",
                    "model_size_bytes", "latency_us"):
            assert r[key] > 0, (variant, key, r[key])
        assert r["count_per_mac"] == pytest.approx(r["count_per_inference"] / r["macs"])
        if variant == "dynamic":  # digits' second convolution is hybrid: TFLM refuses the model
            assert r["tflm_arena_bytes"] is None and r["tflm_tensor_arena_bytes"] is None
        else:
            assert r["arena_bytes"] < r["tflm_arena_bytes"] and r["tflm_tensor_arena_bytes"] < r["tflm_arena_bytes"]
        assert r["ram_bytes"] >= r["arena_bytes"] and r["latency_is_estimate"] is True
        assert r["accuracy_device"] >= 0.9 and not r["latency_only"]
        # the stack: painted on the board <= static bound <= reservation (sized from it, not 8 KiB)
        assert 0 < r["stack_used_bytes"] <= r["stack_bound_bytes"] <= r["stack_reserved_bytes"] < 8192, variant
        assert r["model_ram_with_stack_bytes"] == r["arena_bytes"] + r["stack_reserved_bytes"]
    assert rows["int8"]["bit_exact_fraction"] == 1.0
    assert rows["int8"]["arena_bytes"] < rows["float32"]["arena_bytes"]
    (speedup,) = doc["speedups"]
    assert speedup["device"] == "qemu-m3" and speedup["int8_vs_float32"] == rows["int8"]["speedup_vs_float32"]
    assert speedup["dynamic_vs_float32"] == rows["dynamic"]["speedup_vs_float32"] > 0
    assert speedup["int8_vs_float32"] > 2  # full integer vs soft-float on a core without an FPU
    assert [g["met"] for g in doc["goals"]] == [None] * len(doc["goals"])  # no goal is about digits


def test_goals_judge_the_rows_they_name(monkeypatch, tmp_path):
    from farm.measure import bench
    from farm.measure.bench_goals import GOALS, Goal, evaluate, goals_markdown

    monkeypatch.setattr(bench, "model_figures", lambda model, variant, state, kernels: bench.ModelFigures(
        model=model, variant=variant, macs=1000, arena_bytes=16_256 if model == "kws" else 32,
        tflm_arena_bytes=3000, tflm_tensor_arena_bytes=640, model_size_bytes=5000, const_bytes=2000,
        latency_only=False))
    counts = {("kws", "float32"): 34_000_000, ("kws", "int8"): 3_800_000, ("sine", "float32"): 2_800,
              ("sine", "int8"): 1_900}
    devices = [SimpleNamespace(name="qemu-m4f", flash_bytes=4 << 20, ram_bytes=4 << 20),
               SimpleNamespace(name="qemu-rv32", flash_bytes=4 << 20, ram_bytes=16 << 10)]

    def measure(device, model, variant):
        if device.name == "qemu-rv32":
            return _record("does-not-fit", None)
        record = _record("ok", counts[model, variant])
        record.flash_bytes = 9_000 if model == "sine" else 50_000
        return record

    rows = bench.run_bench(devices, ["kws", "sine"], state=tmp_path, variants=["float32", "int8"], measure=measure)
    verdicts = {v.goal: v for v in evaluate(rows, profiled={"KWS depthwise 3x3, Cortex-M4F": 2.75})}
    assert len(verdicts) == len(GOALS)
    assert verdicts["KWS int8 count, Cortex-M4F"].met is True
    assert verdicts["KWS int8 count, Cortex-M4F"].measured == 3_800_000
    assert verdicts["KWS int8 vs float32, Cortex-M4F"].measured == pytest.approx(34 / 3.8)
    assert verdicts["KWS int8 model RAM"].met is True
    assert verdicts["sine int8 firmware flash"].met is False  # 9,000 B > 8,000
    assert verdicts["KWS int8 count, Cortex-M3"].met is None  # that device was not benched
    assert verdicts["AD int8 count, Cortex-M4F"].measured is None
    # a cell that did not run is a goal not met, not "not measured"
    rv32 = verdicts["KWS int8 runs bit-exact, RV32 (16 KiB RAM)"]
    assert (rv32.measured, rv32.met) == (0.0, False)
    depthwise = verdicts["KWS depthwise 3x3, Cortex-M4F"]
    assert (depthwise.measured, depthwise.met, depthwise.unit) == (2.75, False, "instructions/MAC")
    assert evaluate(rows)[[g.name for g in GOALS].index("KWS depthwise 3x3, Cortex-M4F")].met is None
    slow = evaluate(rows, [Goal("slow", "kws", "int8", "qemu-m4f", "count", 3e6, "instructions")])
    assert slow[0].met is False
    table = goals_markdown(evaluate(rows))
    assert "| sine int8 firmware flash | qemu-m4f | <= 8,000 bytes | 9,000 bytes | **not met** |" in table
    assert "| KWS int8 count, Cortex-M3 | qemu-m3 | <= 6,000,000 instructions | not measured |  |" in table
    assert ("| KWS int8 runs bit-exact, RV32 (16 KiB RAM) | qemu-rv32 | >= 1.00 of outputs | 0.00 of outputs "
            "| **not met** |") in table


def test_a_layer_goal_counts_its_functions_over_its_layers_macs(conv_tflite, tmp_path):
    """profile_per_mac: the profiled instructions of the functions the goal names, over the
    MACs of the goal's layers in the lowered model."""
    from farm.measure.bench_profile import layer_macs, per_mac
    from farm.measure.profile import FunctionCount, Profile

    macs = layer_macs(conv_tflite, "CONV_2D")
    assert macs == 6 * 6 * 4 * 3 * 3  # 8x8 input, 3x3 valid, 4 filters
    assert layer_macs(conv_tflite, "DEPTHWISE_CONV_2D") == 0
    profile = Profile(device="qemu-m4f", elf=tmp_path / "x.elf", unit="instructions", total=3000.0, functions=[
        FunctionCount("conv2d_f32", 1200.0, 0.4), FunctionCount("conv2d_f32_core", 96.0, 0.032),
        FunctionCount("fully_connected_f32", 1704.0, 0.568)])
    assert per_mac(profile, "conv2d", macs) == pytest.approx(1296 / macs)
    with pytest.raises(ValueError, match="no multiply-accumulates"):
        per_mac(profile, "depthwise", 0)


@pytest.mark.e2e
def test_farm_bench_reference_kernels_are_slower_and_as_exact(state_dir: Path):
    """`--kernels reference` measures the plain reference kernels: more instructions than the
    optimized ones on the same board, both bit-exact with tflite-micro, provenance in the row."""
    docs = {}
    for kernels in ("optimized", "reference"):
        proc = subprocess.run([sys.executable, "-m", "farm", "bench", "--json", "--model", "sine", "--variant",
                               "int8", "--device", "qemu-m3", "--kernels", kernels], cwd=REPO, capture_output=True,
                              text=True, env=dict(os.environ), timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        docs[kernels] = json.loads(proc.stdout)
        assert docs[kernels]["kernels"] == kernels
    fast, ref = (docs[k]["rows"][0] for k in ("optimized", "reference"))
    assert fast["bit_exact_fraction"] == ref["bit_exact_fraction"] == 1.0
    assert ref["count_per_inference"] > 1.5 * fast["count_per_inference"]
    from farm.store.results import ResultsStore
    from farm.config.state import default_db_url

    store = ResultsStore(default_db_url(state_dir))
    (record,) = store.results_for_run(docs["reference"]["run_id"])
    assert record.details["kernels"] == "reference"


def test_a_kernels_static_functions_are_found_by_its_source_file(tmp_path):
    """The out-of-line helpers of a kernel file count for its layer goal: local function
    symbols grouped under the file's STT_FILE entry of the ELF's symbol table."""
    from fixtures_tools import require_tool

    from farm.measure.bench_profile import local_functions

    require_tool("gcc")
    (tmp_path / "kernel_a.c").write_text(
        "__attribute__((noinline)) static int helper_one(int x) { return x * 3; }\n"
        "__attribute__((noinline)) static int helper_two(int x) { return x + 7; }\n"
        "int kernel_a(int x) { return helper_one(x) + helper_two(x); }\n")
    (tmp_path / "main.c").write_text(
        "int kernel_a(int x);\n__attribute__((noinline)) static int helper_three(int x) { return x - 1; }\n"
        "int (*volatile keep)(int) = helper_three;\n"
        "int main(void) { return kernel_a(keep(2)) == 0; }\n")
    elf = tmp_path / "prog"
    subprocess.run(["gcc", "-O2", str(tmp_path / "kernel_a.c"), str(tmp_path / "main.c"), "-o", str(elf)],
                   check=True, capture_output=True)
    assert local_functions(elf, "kernel_a.c") == {"helper_one", "helper_two"}
    assert local_functions(elf, "main.c") == {"helper_three"}
    assert local_functions(elf, "other.c") == set()
