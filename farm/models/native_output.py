"""Keep native libraries (TensorFlow's C++ logging, the converter's prints) off the
farm's stdout/stderr, where they would corrupt ``--json`` output and bury progress.

The output is not thrown away: it goes to a log file in the state folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Redirect file descriptors 1 and 2 (not just sys.stdout) to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log_path.open("ab") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
