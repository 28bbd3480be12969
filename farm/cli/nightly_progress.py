"""Progress of a nightly: HIL tests done, and what ``measure`` is doing (building, flashing,
measuring), with counts and times.

:class:`NightlyProgress` is a pytest plugin object (``pytest.main(args, plugins=[p])``)
and the sink of the ``measure`` fixture's progress (``PROGRESS_KEY`` in the plugin's
config stash: ``step(message)`` per pipeline step, ``measured(record, seconds)`` per
result). On a terminal it is a rich live display above which pytest's own output
scrolls; in a log (CI) it writes one line per measured result instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from farm.pytest_plugin.hooks import PROGRESS_KEY


class _Lines(io.TextIOBase):
    """A stdout for pytest while the live display runs: whole lines go above the display (pytest
    flushes after every progress dot; rich's own proxy would give each dot its own line)."""

    encoding = "utf-8"

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.buffer_text = ""

    def isatty(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buffer_text += text
        while "\n" in self.buffer_text:
            line, self.buffer_text = self.buffer_text.split("\n", 1)
            self.console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.buffer_text:
            self.console.print(Text.from_ansi(self.buffer_text), soft_wrap=True)
            self.buffer_text = ""
        super().close()


class _Step:
    """The current pipeline step and how long it has been running (re-rendered by the live display)."""

    def __init__(self, owner: NightlyProgress) -> None:
        self.owner = owner

    def __rich__(self) -> Text:
        o = self.owner
        line = Text("  ")
        if o.step_message:
            line.append(o.step_message, style="cyan")
            line.append(f"  {time.monotonic() - o.step_started:4.1f} s", style="dim")
        else:
            line.append("waiting for the first measurement", style="dim")
        line.append("\n  " + o.counts_text(), style="dim")
        if o.last:
            line.append("\n  last: " + o.last, style="dim")
        return line


class NightlyProgress:
    def __init__(self, live: bool | None = None) -> None:
        self.live = live
        self.started = time.monotonic()
        self.total_tests: int | None = None
        self.outcomes = {"passed": 0, "failed": 0, "skipped": 0}
        self.measured_count = 0
        self.built = 0
        self.cached = 0
        self.not_ok = 0
        self.measure_seconds = 0.0
        self.step_message = ""
        self.step_started = time.monotonic()
        self.last = ""
        self._progress: Progress | None = None
        self._task: Any = None
        self._config: pytest.Config | None = None
        #: boards whose collected tests measure (the night means to run their jobs), in order
        self.planned_boards: list[str] = []
        #: board -> the first reason one of its tests was skipped (busy, quarantined, ...)
        self.skipped_boards: dict[str, str] = {}
        self._board_of: dict[str, str] = {}  # test node id -> its board

    # ----------------------------------------------------------------- display

    @contextlib.contextmanager
    def display(self) -> Iterator[None]:
        """The live display while the suite runs (when stdout is a terminal)."""
        if self.live is None:
            self.live = os.isatty(1)
        if not self.live:
            yield
            return
        # our own handle on the terminal: pytest's fd capture during a test cannot swallow it
        terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
        console = Console(file=terminal, highlight=False)
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self._task = self._progress.add_task("HIL tests: collecting", total=None)
        group = Group(self._progress, _Step(self))
        saved = sys.stdout
        proxy = _Lines(console)
        try:
            with Live(group, console=console, refresh_per_second=8, transient=True, redirect_stdout=False,
                      redirect_stderr=False):
                sys.stdout = proxy  # pytest's own output scrolls above the live display, line by line
                try:
                    yield
                finally:
                    sys.stdout = saved
                    proxy.close()
        finally:
            self._progress = None
            terminal.close()

    def summary(self) -> str:
        tests = ", ".join(f"{n} {k}" for k, n in self.outcomes.items() if n)
        return (f"HIL tests: {tests or 'none ran'} in {time.monotonic() - self.started:.1f} s; "
                + self.counts_text())

    def counts_text(self) -> str:
        text = (f"measured {self.measured_count} (firmware: {self.built} built, {self.cached} cached)"
                f" in {self.measure_seconds:.1f} s")
        return text + (f", {self.not_ok} not ok" if self.not_ok else "")

    # ----------------------------------------------------------------- pytest hooks

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[PROGRESS_KEY] = self
        self._config = config

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total_tests = len(session.items)
        for item in session.items:
            callspec = getattr(item, "callspec", None)
            device = callspec.params.get("device") if callspec is not None else None
            name = getattr(device, "name", None)
            if not isinstance(name, str):
                continue
            self._board_of[item.nodeid] = name
            if "measure" in getattr(item, "fixturenames", ()) and name not in self.planned_boards:
                self.planned_boards.append(name)
        if self._progress is not None:
            self._progress.update(self._task, total=self.total_tests, description=self._tests_text())
        else:
            self._log(f"{self.total_tests} HIL tests collected")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        board = self._board_of.get(report.nodeid)
        if report.skipped and board is not None and board not in self.skipped_boards:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skipped_boards[board] = str(reason).removeprefix("Skipped: ")
        done = False
        if report.when == "call":
            self.outcomes[report.outcome] += 1
            done = True
        elif report.when == "setup" and report.outcome != "passed":
            self.outcomes["skipped" if report.skipped else "failed"] += 1
            done = True
        elif report.when == "teardown" and report.failed:
            self.outcomes["failed"] += 1
        if done and self._progress is not None:
            self._progress.update(self._task, advance=1, description=self._tests_text())

    def _tests_text(self) -> str:
        parts = [f"[green]{self.outcomes['passed']} passed[/]"]
        if self.outcomes["failed"]:
            parts.append(f"[red]{self.outcomes['failed']} failed[/]")
        if self.outcomes["skipped"]:
            parts.append(f"[yellow]{self.outcomes['skipped']} skipped[/]")
        return "HIL tests " + ", ".join(parts)

    # ----------------------------------------------------------------- the measure fixture's sink

    def step(self, message: str) -> None:
        self.step_message = message
        self.step_started = time.monotonic()

    def measured(self, record: Any, seconds: float) -> None:
        self.measured_count += 1
        self.measure_seconds += seconds
        details = record.details or {}
        if "firmware_cached" in details:
            if details["firmware_cached"]:
                self.cached += 1
            else:
                self.built += 1
        if record.status != "ok":
            self.not_ok += 1
        what = f"{record.device} {record.model}/{record.variant}: {record.status}"
        if record.count_median is not None:
            what += f", {record.count_median:,.0f} {record.unit}"
            if record.windows:
                what += f" (median of {record.windows} windows)"
        if "firmware_cached" in details:
            what += (", firmware cached" if details["firmware_cached"]
                     else f", firmware built in {details.get('build_seconds', 0):.1f} s")
        what += f", {seconds:.1f} s"
        self.last = what
        self.step_message = ""
        if self._progress is None:
            self._log(f"measured {what}")

    def _log(self, line: str) -> None:
        """A line in the log, between pytest's own output, never swallowed by its capture."""
        stamp = f"[{time.monotonic() - self.started:6.1f} s] "
        config = self._config
        reporter = config.pluginmanager.get_plugin("terminalreporter") if config else None
        capman = config.pluginmanager.get_plugin("capturemanager") if config else None
        if reporter is None:
            return
        context = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with context:
            reporter.ensure_newline()
            reporter.write_line(stamp + line)
