"""HIL suite: the project's budgets, each a test of its own.

Every limit of a model's ``budgets:`` block in the project file (tinyfarm.yaml) — latency in
µs or in the board's count, energy per inference, accuracy and its drop against float32,
flash, RAM, portability; overridden per variant and per device (device > variant > model) —
becomes one test per (model, variant, device, budget), named
``test_budget[my-model-int8-qemu-m3-latency_us]`` in the terminal, the JUnit XML and the
report, so a team needs no pytest code for the common case. The verdict is
farm.project.budgets.judge on the measured result:

    my-model/int8 on qemu-m3: latency 812.4 µs (40,620 instructions at 50 MHz) > budget 500 µs

A budget that cannot be judged (no energy figure on the board, a build that does not fit,
no float32 result to compare with) fails, saying why. Without a project file, or with no
budgets in it, this module has no tests. Narrow the models with ``FARM_MODELS``.
"""

from __future__ import annotations

from typing import Any

import pytest

from farm.judge.budgets import store_verdict
from farm.models import list_models
from farm.project.budgets import BUDGET_KEYS, REFERENCE_VARIANT, BudgetCheck, effective_limits, judge, \
    project_checks
from farm.project.current import current_project

PROJECT = current_project()
ACTIVE = list_models()


def _budget_keys() -> list[str]:
    """Every budget key some active model sets somewhere (the model, a variant, a device)."""
    keys: set[str] = set()
    for name in PROJECT.model_names if PROJECT is not None else ():
        budgets = PROJECT.budgets_of(name)
        if name in ACTIVE and budgets is not None:
            for block in (budgets, *budgets.variants.values(), *budgets.devices.values()):
                keys.update(k for k, v in block.given().items() if v is not False)
    return [k for k in BUDGET_KEYS if k in keys]


KEYS = _budget_keys()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """(model, variant) of every check, before the plugin adds the device and the mark the
    budget, so the id reads model-variant-device-budget; each pair carries the (device,
    budget) it has checks for (the rest is deselected by farm/hil/conftest.py: a budget set
    for one device only is no test on the others)."""
    if "budget" not in metafunc.fixturenames or PROJECT is None:
        return
    from farm.pytest_plugin.hooks import load_inventory_for

    devices = [d.name for d in load_inventory_for(metafunc.config).devices]
    cases: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for check in project_checks(PROJECT, devices, ACTIVE):
        cases.setdefault((check.model, check.variant), set()).add((check.device, check.budget))
    metafunc.parametrize("model,variant", [
        pytest.param(model, variant, id=f"{model}-{variant}", marks=pytest.mark.farm_budget_cases(frozenset(held)))
        for (model, variant), held in cases.items()])


if KEYS:
    @pytest.mark.parametrize("budget", KEYS)
    def test_budget(device: Any, measure: Any, farm_results: Any, model: str, variant: str, budget: str) -> None:
        limits = effective_limits(PROJECT.budgets_of(model) if PROJECT is not None else None, variant, device.name)
        check = BudgetCheck(model, variant, device.name, budget, limits[budget])
        result = measure(model, variant)
        reference = measure(model, REFERENCE_VARIANT) if check.needs_reference else None
        verdict = judge(check, result, device, reference)
        store, run_id = farm_results
        store_verdict(store, run_id, verdict.to_dict())  # for the nightly's verdict and the report
        if not verdict.passed:
            pytest.fail(verdict.sentence, pytrace=False)
