"""Where the packaged HIL suite is: ``farm/hil`` (package data, installed with the wheel).

``farm nightly`` runs it with the plugin; ``pytest $(python -c 'from farm.pytest_plugin.suite
import HIL_SUITE; print(HIL_SUITE)') --farm-devices devices.yaml`` does the same by hand."""

from __future__ import annotations

from pathlib import Path

HIL_SUITE = Path(__file__).resolve().parents[1] / "hil"
