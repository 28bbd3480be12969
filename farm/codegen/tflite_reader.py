"""Read a .tflite flatbuffer into plain dataclasses, without TensorFlow.

Uses the flatbuffer schema module shipped in the ``tflite-micro`` wheel
(``tflite_micro.tensorflow.lite.micro.python.schema_py_generated``). The result
is plain data: tensors (name, shape, dtype, constant data as numpy, quantization
parameters) and operators (opcode name, input/output tensor indices, builtin
options as a dict with snake_case keys).

    model = read_tflite(Path("sine-int8.tflite"))
    for op in model.main.operators:
        print(op.index, op.opcode, op.options.get("fused_activation"))
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

__all__ = [
    "QuantParams",
    "Tensor",
    "Operator",
    "Subgraph",
    "TfliteModel",
    "TfliteFormatError",
    "read_tflite",
    "parse_tflite",
]

#: TensorType enum value -> (name, numpy dtype or None when not byte-addressable).
_DTYPES: dict[int, tuple[str, np.dtype | None]] = {
    schema.TensorType.FLOAT32: ("float32", np.dtype("<f4")),
    schema.TensorType.FLOAT16: ("float16", np.dtype("<f2")),
    schema.TensorType.FLOAT64: ("float64", np.dtype("<f8")),
    schema.TensorType.INT8: ("int8", np.dtype("i1")),
    schema.TensorType.UINT8: ("uint8", np.dtype("u1")),
    schema.TensorType.INT16: ("int16", np.dtype("<i2")),
    schema.TensorType.UINT16: ("uint16", np.dtype("<u2")),
    schema.TensorType.INT32: ("int32", np.dtype("<i4")),
    schema.TensorType.UINT32: ("uint32", np.dtype("<u4")),
    schema.TensorType.INT64: ("int64", np.dtype("<i8")),
    schema.TensorType.UINT64: ("uint64", np.dtype("<u8")),
    schema.TensorType.BOOL: ("bool", np.dtype("?")),
    schema.TensorType.INT4: ("int4", None),
    schema.TensorType.STRING: ("string", None),
}

def _enum_names(enum: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


_ACTIVATIONS = _enum_names(schema.ActivationFunctionType)

#: builtin option fields reported by enum name instead of number
_ENUM_OPTIONS: dict[str, dict[int, str]] = {
    "padding": _enum_names(schema.Padding),
    "weightsFormat": _enum_names(schema.FullyConnectedOptionsWeightsFormat),
}


class TfliteFormatError(ValueError):
    """The file is not a .tflite flatbuffer this reader understands."""


@cache
def _builtin_names() -> dict[int, str]:
    return {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_") and isinstance(value, int)
    }


@cache
def _options_names() -> dict[int, str]:
    return {
        value: name
        for name, value in vars(schema.BuiltinOptions).items()
        if not name.startswith("_") and isinstance(value, int)
    }


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per channel."""

    scales: np.ndarray  # float32, shape (C,)
    zero_points: np.ndarray  # int64, shape (C,)
    quantized_dimension: int

    @property
    def per_channel(self) -> bool:
        return self.scales.size > 1

    @property
    def scale(self) -> float:
        """The per-tensor scale (the first one for a per-channel tensor)."""
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


@dataclass(frozen=True, eq=False)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32", "int8", "int32", ...
    data: np.ndarray | None  # constant data shaped like `shape`; None for activations
    quant: QuantParams | None
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def itemsize(self) -> int:
        np_dtype = dtype_to_numpy(self.dtype)
        return np_dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.num_elements * self.itemsize


@dataclass(frozen=True, eq=False)
class Operator:
    index: int
    opcode: str  # "FULLY_CONNECTED", "CUSTOM", ...
    inputs: tuple[int, ...]  # tensor indices; -1 = optional input left out
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    custom_code: str | None = None


@dataclass(frozen=True, eq=False)
class Subgraph:
    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def consumers(self, tensor_index: int) -> list[Operator]:
        return [op for op in self.operators if tensor_index in op.inputs]

    def producer(self, tensor_index: int) -> Operator | None:
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None


@dataclass(frozen=True, eq=False)
class TfliteModel:
    path: Path | None
    version: int
    description: str
    subgraphs: tuple[Subgraph, ...]
    sha256: str
    size_bytes: int

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    @property
    def label(self) -> str:
        """How errors name this model: the file name, or "<bytes>"."""
        return self.path.name if self.path is not None else "<bytes>"


def dtype_to_numpy(dtype: str) -> np.dtype:
    for name, np_dtype in _DTYPES.values():
        if name == dtype and np_dtype is not None:
            return np_dtype
    raise ValueError(f"tensor dtype {dtype!r} has no numpy equivalent")


def read_tflite(path: Path) -> TfliteModel:
    """Parse the .tflite file at `path`."""
    path = Path(path)
    return parse_tflite(path.read_bytes(), path=path)


def parse_tflite(data: bytes, path: Path | None = None) -> TfliteModel:
    """Parse .tflite flatbuffer bytes (`path` only names the model in errors)."""
    label = path.name if path is not None else "<bytes>"
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TfliteFormatError(f"{label}: not a .tflite flatbuffer (no TFL3 file identifier)")
    try:
        fb = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # flatbuffers raises assorted errors on corrupt input
        raise TfliteFormatError(f"{label}: corrupt .tflite flatbuffer: {exc}") from exc
    if not fb.subgraphs:
        raise TfliteFormatError(f"{label}: model has no subgraphs")

    buffers = [_buffer_bytes(buf, data, label, i) for i, buf in enumerate(fb.buffers or [])]
    opcodes = [_opcode(code) for code in (fb.operatorCodes or [])]
    subgraphs = tuple(
        _subgraph(sg, buffers, opcodes, label) for sg in fb.subgraphs
    )
    description = fb.description.decode() if isinstance(fb.description, bytes) else (fb.description or "")
    return TfliteModel(
        path=path,
        version=int(fb.version),
        description=description,
        subgraphs=subgraphs,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
    )


def _buffer_bytes(buf: Any, data: bytes, label: str, index: int) -> bytes | None:
    if buf.data is not None and len(buf.data) > 0:
        return bytes(np.asarray(buf.data, dtype=np.uint8))
    # Models over 2 GB (or converted with use_buffer_offset) keep buffers after
    # the flatbuffer, addressed by absolute file offset.
    if buf.offset > 1 and buf.size > 0:
        end = buf.offset + buf.size
        if end > len(data):
            raise TfliteFormatError(f"{label}: buffer #{index} runs past the end of the file")
        return data[buf.offset:end]
    return None


def _opcode(code: Any) -> tuple[str, str | None, int]:
    # Schema v3a: the builtin code lives in `builtin_code` (int32) for ops >= 127,
    # and in `deprecated_builtin_code` (int8) for older files; the larger wins.
    value = max(int(code.deprecatedBuiltinCode), int(code.builtinCode))
    name = _builtin_names().get(value, f"BUILTIN_{value}")
    custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
    return name, custom, int(code.version)


def _subgraph(sg: Any, buffers: list[bytes | None], opcodes: list[tuple[str, str | None, int]],
              label: str) -> Subgraph:
    tensors = tuple(_tensor(i, t, buffers, label) for i, t in enumerate(sg.tensors or []))
    operators = []
    for i, op in enumerate(sg.operators or []):
        if op.opcodeIndex >= len(opcodes):
            raise TfliteFormatError(f"{label}: operator #{i} refers to missing opcode #{op.opcodeIndex}")
        name, custom, version = opcodes[op.opcodeIndex]
        operators.append(Operator(
            index=i,
            opcode=name,
            inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else [])),
            outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else [])),
            options=_options(op),
            version=version,
            custom_code=custom,
        ))
    name = sg.name.decode() if isinstance(sg.name, bytes) else (sg.name or "")
    return Subgraph(
        name=name,
        tensors=tensors,
        operators=tuple(operators),
        inputs=tuple(int(x) for x in (sg.inputs if sg.inputs is not None else [])),
        outputs=tuple(int(x) for x in (sg.outputs if sg.outputs is not None else [])),
    )


def _tensor(index: int, t: Any, buffers: list[bytes | None], label: str) -> Tensor:
    dtype_name, np_dtype = _DTYPES.get(t.type, (f"type{t.type}", None))
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    name = t.name.decode() if isinstance(t.name, bytes) else (t.name or f"tensor{index}")
    raw = buffers[t.buffer] if 0 <= t.buffer < len(buffers) else None
    data: np.ndarray | None = None
    if raw is not None:
        if np_dtype is None:
            data = np.frombuffer(raw, dtype=np.uint8).copy()  # packed / opaque: raw bytes
        else:
            flat = np.frombuffer(raw, dtype=np_dtype)
            expected = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if flat.size != expected:
                raise TfliteFormatError(
                    f"{label}: tensor #{index} {name!r} has {flat.size} elements of data "
                    f"for shape {list(shape)} ({expected} expected)")
            data = flat.reshape(shape).copy()
    return Tensor(
        index=index,
        name=name,
        shape=shape,
        dtype=dtype_name,
        data=data,
        quant=_quant(t.quantization),
        is_variable=bool(t.isVariable),
    )


def _quant(q: Any) -> QuantParams | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scales = np.asarray(q.scale, dtype=np.float32)
    zps = np.asarray(q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0] * scales.size,
                     dtype=np.int64)
    if zps.size == 1 and scales.size > 1:
        zps = np.repeat(zps, scales.size)
    return QuantParams(scales=scales, zero_points=zps, quantized_dimension=int(q.quantizedDimension))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(op: Any) -> dict[str, Any]:
    opts = op.builtinOptions
    if opts is None:
        return {}
    result: dict[str, Any] = {"options_type": _options_names().get(op.builtinOptionsType, "")}
    for key, value in vars(opts).items():
        if key == "fusedActivationFunction":
            result["fused_activation"] = _ACTIVATIONS.get(value, f"ACTIVATION_{value}")
            continue
        if key in _ENUM_OPTIONS:
            value = _ENUM_OPTIONS[key].get(value, value)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, bytes):
            value = value.decode()
        result[_snake(key)] = value
    return result
