"""The lowerings of the supported operators, one module per op family.

Importing this package registers every lowering with `farm.codegen.lowering`.
Each module holds the op's `Step` types (the parameters the host computed and
how to emit the kernel call) next to its lowering function.
"""

from farm.codegen.ops import (  # noqa: F401
    activations,
    conv,
    elementwise,
    fully_connected,
    mean,
    pooling,
    quantize,
    shape,
    softmax,
)
