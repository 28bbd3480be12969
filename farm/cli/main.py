"""The ``farm`` command: the click group and its commands, one module each (farm/cli/).

Exit codes: 0 success; 1 a measurement failed or a check/test failed; 2 bad input
(inventory, model, arguments) — reported in one message, never a traceback.
"""

from __future__ import annotations

import os

# TensorFlow (imported only when a model must be trained or converted) logs a lot
# on stderr; keep the farm's own output readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")

import click  # noqa: E402

from farm import __version__  # noqa: E402
from farm.cli.baseline import baseline  # noqa: E402
from farm.cli.bench import bench  # noqa: E402
from farm.cli.common import farm_options  # noqa: E402
from farm.cli.compare import compare  # noqa: E402
from farm.cli.devices import devices  # noqa: E402
from farm.cli.infer import infer  # noqa: E402
from farm.cli.init import init  # noqa: E402
from farm.cli.models import models  # noqa: E402
from farm.cli.nightly import nightly  # noqa: E402
from farm.cli.portability import portability  # noqa: E402
from farm.cli.profile import profile  # noqa: E402
from farm.cli.report import report  # noqa: E402
from farm.cli.results import results  # noqa: E402
from farm.cli.run import run  # noqa: E402
from farm.cli.worker import worker  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@farm_options
@click.version_option(__version__, prog_name="farm")
def cli() -> None:
    """tinyfarm: build TinyML models and firmware, run them on boards, measure and judge.

    \b
    Typical use:
      farm init                            start a project here: tinyfarm.yaml, devices.yaml, a HIL test
      farm devices                         list the boards of the inventory
      farm models                          build the model zoo, show the size table
      farm run --device qemu-m3 --model sine --variant int8 --json
      farm infer my.tflite --device qemu-m4f --input in.npy --output out.npy
      farm nightly                         HIL suite on every board, summary table
      farm results --run latest            stored results

    State (model cache, firmware builds, PlatformIO core, results.db) lives in
    ./.farm or $FARM_HOME; $FARM_DB_URL selects another results database.
    """


# in the order `farm --help` listed them before the split (click sorts them by name anyway)
for command in (init, devices, models, run, infer, results, nightly, bench, portability, compare, baseline, report,
                profile, worker):
    cli.add_command(command)


def main() -> None:
    cli.main(prog_name="farm")
