"""Which measurements the collected HIL tests will ask ``measure`` for, known after collection.

For each collected test that uses ``device`` and ``measure``: its device is its
``device`` parameter; its models are its ``model`` parameter, else the zoo model
names written in the test function (``measure("sine", ...)``); its variants are its
``variant`` parameter, else the variant names written in the function, else every
variant (a test that loops over VARIANTS). A test that names no model is planned
for nothing: its ``measure`` calls are submitted when made. The plan only decides
what is submitted ahead; what a test gets is what it asks for.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pytest

Planned = tuple[Any, str, str]  # (device, model, variant)
Key = tuple[str, str, str]  # (device name, model, variant)

#: the session's (device, model, variant) measured and asked a portability cell of (merged_runs)
MERGED_KEY = pytest.StashKey[frozenset[Key]]()


@lru_cache(maxsize=None)
def _literals(function: Any) -> frozenset[str]:
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    return frozenset(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _name(param: Any) -> str | None:
    return param if isinstance(param, str) and param else None


def planned_measurements(items: Iterable[Any], fixture: str = "measure") -> list[Planned]:
    """(device, model, variant) the ``items`` will ask ``fixture`` for (``measure``, or
    ``portability``: a matrix cell), in test order, each once."""
    from farm.config.variants import VARIANTS
    from farm.models import registered_models
    from farm.models.sources import model_variants

    models_known = set(registered_models())
    plan: list[Planned] = []
    seen: set[tuple[str, str, str]] = set()
    for item in items:
        callspec = getattr(item, "callspec", None)
        if fixture not in getattr(item, "fixturenames", ()) or callspec is None or "device" not in callspec.params:
            continue
        device = callspec.params["device"]
        written = _literals(getattr(item, "function", None))
        # a parameter that is not a name: pytest's placeholder for an empty parametrize list
        # (a project whose zoo list is empty), the test is skipped
        model = _name(callspec.params.get("model"))
        models = [model] if model else sorted(m for m in written if m in models_known)
        variant = _name(callspec.params.get("variant"))
        variants = [variant] if variant else [v for v in VARIANTS if v in written] or list(VARIANTS)
        for m in models:
            declared = model_variants(m) if m in models_known else ()
            for v in (variants if variant else [v for v in variants if v in declared]):
                key = (device.name, m, v)
                if key not in seen:
                    seen.add(key)
                    plan.append((device, m, v))
    return plan


def merged_runs(items: Iterable[Any]) -> frozenset[Key]:
    """The (device name, model, variant) the ``items`` both measure and ask a portability cell of:
    one job makes both (the measurement's first test sample stands for the cell's inference)."""
    items = list(items)
    measured = {(d.name, m, v) for d, m, v in planned_measurements(items)}
    return frozenset(k for k in ((d.name, m, v) for d, m, v in planned_measurements(items, "portability"))
                     if k in measured)


def merged_of(config: pytest.Config) -> frozenset[Key]:
    """The session's merged runs (empty before collection finished, or with --collect-only)."""
    return config.stash.get(MERGED_KEY, frozenset())
