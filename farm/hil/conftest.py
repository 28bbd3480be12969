"""The nightly HIL suite. Runs with tinyfarm's pytest plugin: ``farm nightly`` or
``pytest farm/hil --farm-devices devices.yaml [--farm-project tinyfarm.yaml]``.

It runs over the active models (farm.models.list_models: the project's models and the zoo
examples it includes, or the whole zoo without a project), each over its declared variants;
test_budgets.py turns the project's budgets into tests. Here: test_sine.py runs only when the
zoo's sine model is active, and a budget test is kept only for the (device, budget) its
(model, variant) has a limit for."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "farm_budget_cases(cases): the (device, budget) pairs a budget test's "
                                       "(model, variant) has a limit for (farm/hil/test_budgets.py)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """test_sine.py asserts on the zoo's sine model: not collected when sine is not active
    (a project that does not include it, or $FARM_MODELS without it)."""
    if collection_path.name == "test_sine.py" and collection_path.resolve().parent == HERE:
        from farm.models import list_models

        return True if "sine" not in list_models() else None
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("farm_budget_cases")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None:
            kept.append(item)
            continue
        held = (callspec.params["device"].name, callspec.params["budget"])
        (kept if held in marker.args[0] else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
