"""Every test in tests/e2e builds firmware and runs it on an emulated board (or a real sshd
on loopback): it carries the ``e2e`` mark, so ``pytest -m "not e2e"`` is the fast unit run."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
