"""The model variants: the one list, in the order the seed compares them (read by every stage).

    float32       the plain TFLite converter
    int8-weights  Strategy A: int8 weights behind DEQUANTIZE, float compute
    dynamic       the seed's "Model 2": Optimize.DEFAULT without a representative dataset:
                  hybrid FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D (float input, int8
                  weights, the input quantized per batch at run time)
    int8          full integer, calibrated on a representative dataset

Commands, reports and tests read :data:`VARIANTS` (as ``farm.models.VARIANTS``); how each
variant is built is farm.models' business (farm.models.variants). This module imports
nothing, so the CLI's help can name the variants without loading the models package.
"""

from __future__ import annotations

VARIANTS: tuple[str, ...] = ("float32", "int8-weights", "dynamic", "int8")

FLOAT32 = "float32"
DYNAMIC = "dynamic"
INT8 = "int8"

#: variant -> what it is, in a few words
DESCRIPTIONS: dict[str, str] = {
    "float32": "float32 weights and compute",
    "int8-weights": "int8 weights dequantized to float (Strategy A)",
    "dynamic": "dynamic range: hybrid ops on int8 weights, the input quantized at run time",
    "int8": "full integer",
}

#: variants with float outputs, held to a tolerance of their host reference (int8: bit-exact)
FLOAT_OUTPUT_VARIANTS: tuple[str, ...] = tuple(v for v in VARIANTS if v != INT8)


def variant_order(variant: str) -> int:
    """A variant's place in :data:`VARIANTS` (a variant not there sorts last)."""
    return VARIANTS.index(variant) if variant in VARIANTS else len(VARIANTS)


def variants_help(default: str = "all") -> str:
    """The help of a ``--variant`` option: the variants by name, and what the default is."""
    return f"{', '.join(VARIANTS[:-1])} or {VARIANTS[-1]} (repeatable; default: {default})."
