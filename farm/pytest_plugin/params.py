"""Parametrizing the HIL suite over the active models, which a project may leave empty.

``pytest.mark.parametrize`` with no parameters makes a test that pytest reports as
skipped ("got empty parameter set"): a project without zoo models would see every
zoo-only test skipped each night. `over` leaves such a test out instead: with no
parameters, the decorated function is not a test at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def over(argnames: str, params: Sequence[Any]) -> Callable[[Callable[..., Any]], Any]:
    """``pytest.mark.parametrize(argnames, params)``, or, with no params, a decorator that
    removes the test (the module gets None under its name). Put it above every other
    decorator of the test."""
    import pytest

    if params:
        return pytest.mark.parametrize(argnames, list(params))
    return lambda _function: None
