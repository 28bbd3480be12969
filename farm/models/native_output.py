"""Keep native libraries (TensorFlow's C++ logging, the converter's prints) off the
farm's stdout/stderr, where they would corrupt ``--json`` output and bury progress.

The output is not thrown away: it goes to a log file in the state folder. File
descriptors belong to the process, so the redirection does too: threads that enter
at the same time (a Dask worker serving several boards) share one redirection, made
by the first and undone by the last, to the first one's log file.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_LOCK = threading.Lock()
_users = 0
_saved: list[int] = []


@contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Redirect file descriptors 1 and 2 (not just sys.stdout) to ``log_path``."""
    global _users
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        if _users == 0:
            sys.stdout.flush()
            sys.stderr.flush()
            _saved[:] = [os.dup(1), os.dup(2)]
            with log_path.open("ab") as log:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
        _users += 1
    try:
        yield
    finally:
        with _LOCK:
            _users -= 1
            if _users == 0:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(_saved[0], 1)
                os.dup2(_saved[1], 2)
                for fd in _saved:
                    os.close(fd)
                _saved.clear()
