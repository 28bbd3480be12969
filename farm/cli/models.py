"""``farm models``: the project's models (their source and variants), each variant built (or
loaded from cache) with its size; the seed's size table for a SavedModel or Keras source."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from farm.cli.common import check_models_and_variants, default_models, err, farm_options, out, project_of


@click.command("models")
@farm_options
@click.option("--model", "models", multiple=True, help="Model name (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models(ctx: click.Context, models: tuple[str, ...], as_json: bool) -> None:
    """The models: the project's (tinyfarm.yaml: its own and the zoo examples it includes; without
    a project, the zoo), each with its source and variants; builds (or loads from cache) every
    declared variant and prints the size table: each variant's .tflite, and for a SavedModel or
    Keras source the source's size first with each variant's ratio to it (the seed's table)."""
    from farm.config.state import state_dir
    from farm.models import build_variant
    from farm.models.native_output import native_output_to
    from farm.models.sources import model_variants, size_table

    project = project_of(ctx)
    check_models_and_variants(models, ())
    names = list(models) or default_models()
    listing = [{"model": name, "source": source_of(project, name), "variants": list(model_variants(name))}
               for name in names]
    cache = state_dir() / "models"
    rows = []
    seed_tables: dict[str, list[Any]] = {}
    for entry in listing:
        name = entry["model"]
        for variant in entry["variants"]:
            with err.status(f"model {name}/{variant}"), native_output_to(state_dir() / "logs" / "tensorflow.log"):
                art = build_variant(name, variant, cache)
            rows.append({"model": name, "variant": variant, "size_bytes": art.size_bytes,
                         "sha256": art.sha256, "metric": art.metric, "host_metric": art.host_metric,
                         "tflite": str(art.tflite_path), "source": entry["source"]})
        if entry["source"]["kind"] in ("saved_model", "keras"):
            with err.status(f"model {name}: size table"), native_output_to(state_dir() / "logs" / "tensorflow.log"):
                seed_tables[name] = size_table(name, cache)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    out.print(f"project: {escape(str(project.path))}" if project is not None
              else "no project file (tinyfarm.yaml): the zoo", soft_wrap=True)
    print_listing(listing, "models")
    print_sizes(rows)
    for name, table in seed_tables.items():
        print_seed_table(name, table)


def source_of(project: Any, name: str) -> dict[str, str]:
    """Where a model comes from, for people: ``{"kind": "keras", "path": "models/m.keras"}``."""
    entry = project.models.get(name) if project is not None else None
    if entry is None:
        return {"kind": "zoo", "path": name}
    source = entry.source
    kind = source.kind
    if kind == "tflite":
        where = ", ".join(f"{v}: {f}" for v, f in (source.tflite or {}).items())
    else:
        where = str(getattr(source, kind))
    return {"kind": kind, "path": where}


def print_listing(listing: list[dict[str, Any]], title: str) -> None:
    table = Table(title=escape(title))
    for col in ("model", "source", "variants"):
        table.add_column(col)
    for entry in listing:
        source = entry["source"]
        table.add_row(escape(entry["model"]), escape(f"{source['kind']}: {source['path']}"),
                      escape(", ".join(entry["variants"])))
    out.print(table)


def print_sizes(rows: list[dict[str, Any]]) -> None:
    table = Table(title="model file sizes (.tflite)")
    for col in ("model", "variant", "bytes", "vs float32", "host metric"):
        table.add_column(col, justify="right" if col in ("bytes", "vs float32") else "left")
    float_size = {r["model"]: r["size_bytes"] for r in rows if r["variant"] == "float32"}
    for r in rows:
        base = float_size.get(r["model"])
        ratio = f"{r['size_bytes'] / base:.2f}x" if base and r["variant"] != "float32" else ""
        metric = f"{r['metric']} {r['host_metric']:.4f}" if r["host_metric"] is not None else "no data (latency-only)"
        table.add_row(escape(r["model"]), r["variant"], str(r["size_bytes"]), ratio, escape(metric))
    out.print(table)


def _human(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


def print_seed_table(name: str, rows: list[Any]) -> None:
    """The seed's table: the source's size, then each variant's .tflite and its ratio to the source."""
    table = Table(title=escape(f"{name}: sizes against the source"))
    for col in ("file", "bytes", "size", "vs source"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for row in rows:
        ratio = f"{row.ratio_to_source:.3f}" if row.ratio_to_source is not None else ""
        table.add_row(escape(row.label), str(row.bytes), _human(row.bytes), ratio)
    out.print(table)
