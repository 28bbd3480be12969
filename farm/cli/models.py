"""``farm models``: build (or load from cache) every variant of the zoo models; the size table."""

from __future__ import annotations

import json

import click

from farm.cli.common import check_models_and_variants, default_models, err, farm_options, out


@click.command("models")
@farm_options
@click.option("--model", "models", multiple=True, help="Model name (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(models: tuple[str, ...], as_json: bool) -> None:
    """Build (or load from cache) every variant of the zoo models; print the size table."""
    from farm.config.state import state_dir
    from farm.models import VARIANTS, build_variant
    from farm.models.native_output import native_output_to
    from farm.report.console import print_model_sizes

    check_models_and_variants(models, ())
    names = list(models) or default_models()
    rows = []
    for name in names:
        for variant in VARIANTS:
            with err.status(f"model {name}/{variant}"), native_output_to(state_dir() / "logs" / "tensorflow.log"):
                art = build_variant(name, variant, state_dir() / "models")
            rows.append({"model": name, "variant": variant, "size_bytes": art.size_bytes,
                         "sha256": art.sha256, "metric": art.metric, "host_metric": art.host_metric,
                         "tflite": str(art.tflite_path)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_model_sizes(out, rows)
