"""``farm devices``: the inventory, each device's capabilities, how it is reached, its state."""

from __future__ import annotations

import json

import click

from farm.cli.common import db_url, devices_file, err, farm_options, load_inventory, open_store, out, select_devices


@click.command("devices")
@farm_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--clear-quarantine", "clear", multiple=True, metavar="NAME",
              help="End the quarantine of a device (repeatable), then list.")
@click.pass_context
def devices(ctx: click.Context, as_json: bool, clear: tuple[str, ...]) -> None:
    """List the inventory: each device's capabilities, how it is reached, its state.

    The state says whether a device is free, leased by a run (whose, until when)
    or quarantined (why, until when: it failed to identify), from the results
    database's lease table (farm.board.leases).
    """
    from farm.board.leases import LeaseManager
    from farm.report.console import device_rows, print_devices

    inventory = load_inventory(devices_file(ctx))
    select_devices(inventory, clear)
    rows = device_rows(inventory)
    url = db_url(ctx)
    open_store(url).close()  # a bad URL or a dead server: one sentence, exit 2
    leases = LeaseManager(url, purpose="farm devices")
    try:
        for name in clear:
            if leases.clear_quarantine(name):
                err.print(f"{name}: quarantine cleared")
        for row, lease in zip(rows, leases.states([r["name"] for r in rows]), strict=True):
            row["lease"] = lease.to_json()
            if lease.state != "free":
                row["state"] = lease.text
            elif row["state"] == "ready":
                row["state"] = "free"
    finally:
        leases.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_devices(out, rows, devices_file(ctx))
