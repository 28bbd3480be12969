""".tflite -> C: weights as const arrays, a static memory plan, calls into the kernels.

    check_supported(Path("m.tflite"))      # raises UnsupportedOperatorError before anything is built
    gen = generate(Path("m.tflite"), out_dir, name="sine", variant="int8")
    gen.source, gen.header, gen.arena_bytes

The host does all the float math (TFLM's "Prepare"); int8 firmware gets integers only.
Supported (float32, int8, and float32 with int8 weights behind a DEQUANTIZE where
an op has weights): CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D,
MAX_POOL_2D, MEAN, ADD, MUL, PAD, RESHAPE, CONCATENATION, SOFTMAX, LOGISTIC, TANH,
RELU, RELU6, QUANTIZE, DEQUANTIZE (one module per op family in farm/codegen/ops);
CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED also hybrid (dynamic range: float32
input with constant int8 weights, farm.codegen.ops.hybrid); one subgraph with one
input and one output. `supported_ops()` lists them.
"""

from farm.codegen.errors import CodegenError, UnsupportedModelError, UnsupportedOperatorError
from farm.codegen.generator import GeneratedModel, check_supported, generate
from farm.codegen.lowering import supported_ops

__all__ = [
    "CodegenError",
    "GeneratedModel",
    "UnsupportedModelError",
    "UnsupportedOperatorError",
    "check_supported",
    "generate",
    "supported_ops",
]
