"""The lowerings of the supported operators, one module per op family.

Importing this package registers every lowering with `farm.codegen.registry`
(farm.codegen.lowering imports it). Each module holds the op's `Step` types (the
parameters the host computed and how to emit the kernel call) next to its
lowering function; the modules import only farm.codegen.ir, .registry, .emit and
their shared helpers (farm.codegen.ops.common), never the lowering driver.
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
