"""tinyfarm's pytest plugin (entry point ``tinyfarm``): HIL tests that assert on measurements.

\b
    def test_int8_bit_exact(device, measure):
        result = measure("sine", "int8")
        assert result.bit_exact_fraction == 1.0

``device`` is parametrized over the inventory (``--farm-devices FILE``); the
``farm_select`` marker narrows it (``@pytest.mark.farm_select(fpu="none")``).
``measure(model, variant)`` builds, flashes and measures once per session per
(device, model, variant) and stores the result in the results database; ``model`` is a
model of the project (``--farm-project FILE``, else $FARM_PROJECT, else ./tinyfarm.yaml:
activated before collection), a zoo model, or the path of a ``.tflite`` file.

With ``--farm-scheduler local`` (or a scheduler's address, or ``$FARM_SCHEDULER``) the
measurements run on a Dask cluster, every board at once (farm.pytest_plugin.cluster);
without it, in this process, one after the other. ``measure`` works the same either way.
"""

from farm.pytest_plugin.fixtures import (  # noqa: F401
    device,
    farm_cells,
    farm_inventory,
    farm_lease_policy,
    farm_leases,
    farm_measurements,
    farm_results,
    farm_state,
    farm_static_checks,
    farm_user_models,
    measure,
    portability,
    static_portability,
)
from farm.pytest_plugin.cluster import (  # noqa: F401
    pytest_collection_finish,
    pytest_unconfigure,
)
from farm.pytest_plugin.hooks import (  # noqa: F401
    pytest_addoption,
    pytest_configure,
    pytest_generate_tests,
)
