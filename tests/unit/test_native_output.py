"""native_output_to: native output goes to the log, and threads sharing the redirection
leave the process's stdout as it was when the last one leaves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_native_output_goes_to_the_log_and_stdout_is_restored_after_threads(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "native.log"
    script = textwrap.dedent(f"""
        import os, threading, time
        from pathlib import Path
        from farm.models.native_output import native_output_to

        def work(i):
            with native_output_to(Path({str(log)!r})):
                os.write(1, b"native %d\\n" % i)
                time.sleep(0.05 * (i % 3))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        os.write(1, b"after\\n")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "after\n"
    written = log.read_text().splitlines()
    assert sorted(written) == sorted(f"native {i}" for i in range(8))
