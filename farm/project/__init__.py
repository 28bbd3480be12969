"""The user's project: ``tinyfarm.yaml`` — the team's own models (source, data, metric,
variants, budgets), the zoo examples it includes, and its own HIL tests.

- ``file.py``    the schema (pydantic, every key checked), ``load_project`` with errors that
                 name ``file:line: field``; ``Project``, ``Budgets``, ``BudgetLimits``.
- ``current.py`` the project of this process: found (``--project``, ``$FARM_PROJECT``,
                 ``./tinyfarm.yaml``), loaded, its models registered with farm.models.
- ``init.py``    what ``farm init`` writes into an empty directory.

The stage comes after farm.models (it registers the project's models there) and before the
command line and the pytest plugin; nothing in models/codegen/build/board/measure imports it.
"""
