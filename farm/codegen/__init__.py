""".tflite -> C: weights as const arrays, a static memory plan, calls into the kernels.

    check_supported(Path("m.tflite"))      # raises UnsupportedOperatorError before anything is built
    gen = generate(Path("m.tflite"), out_dir, name="sine", variant="int8")
    gen.source, gen.header, gen.arena_bytes

The host does all the float math (TFLM's "Prepare"); int8 firmware gets integers only.
Supported: FULLY_CONNECTED (float32; int8 with per-tensor or per-channel weights;
float with int8 weights behind a DEQUANTIZE), QUANTIZE (float32 -> int8),
DEQUANTIZE (int8 -> float32); one subgraph with one input and one output.
"""

from farm.codegen.errors import CodegenError, UnsupportedModelError, UnsupportedOperatorError
from farm.codegen.generator import GeneratedModel, check_supported, generate

__all__ = [
    "CodegenError",
    "GeneratedModel",
    "UnsupportedModelError",
    "UnsupportedOperatorError",
    "check_supported",
    "generate",
]
