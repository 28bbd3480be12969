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
    """A budget test is parametrized (model, variant) x device x budget (pytest's parametrization
    is a product); the combinations without a limit on that device were never tests — a budget
    set for one variant or one board only — and are dropped, not reported as deselected."""
    kept = []
    for item in items:
        marker = item.get_closest_marker("farm_budget_cases")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or \
                (callspec.params["device"].name, callspec.params["budget"]) in marker.args[0]:
            kept.append(item)
    if len(kept) != len(items):
        items[:] = kept
