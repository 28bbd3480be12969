"""Errors of the code generator: raised before anything is written."""

from __future__ import annotations


class CodegenError(ValueError):
    """The model cannot be turned into C."""


class UnsupportedModelError(CodegenError):
    """The graph as a whole is outside what the generator handles (subgraphs, I/O)."""


class UnsupportedOperatorError(CodegenError):
    """An operator (or an operator's configuration) the generator has no kernel for.

    `op` is the opcode name, `model` the model file name, `where` the operator
    index in the subgraph, `detail` what about the operator is unsupported
    (None when the opcode itself is).
    """

    def __init__(self, op: str, model: str, where: int, detail: str | None = None,
                 supported: tuple[str, ...] = ()) -> None:
        self.op = op
        self.model = model
        self.where = where
        self.detail = detail
        self.supported = supported
        if detail is None:
            message = (f"{model}: operator #{where} {op} is not supported by the code generator "
                       f"(supported: {', '.join(supported)})")
        else:
            message = f"{model}: operator #{where} {op}: {detail}"
        super().__init__(message)
