"""Host reference inference, one sample (a batch of one) at a time.

- int8 (full integer): the TensorFlow Lite Micro interpreter from the
  ``tflite-micro`` wheel, which is what the device must match bit for bit.
  (``tf.lite.Interpreter`` requantizes FULLY_CONNECTED differently and is off
  by 1-3 LSB on some outputs, so it is not a reference for int8.)
- float32 and int8-weights: ``tf.lite.Interpreter`` (TensorFlow's float kernels).

A file whose constant buffers follow the flatbuffer (addressed by file offset: files over
2 GB, TF's ``_experimental_use_buffer_offset``) is handed to tflite-micro with those buffers
moved inside (`with_buffers_inside`): its interpreter does not read them, and would run on
zeros without a word.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def run_tflm(tflite: bytes, inputs: np.ndarray, *, batched: bool = False) -> np.ndarray:
    """Outputs of the TFLM interpreter for each input.

    `inputs` is N x input shape without the batch of one (each sample is fed as
    a batch of one, and the outputs lose it again); with `batched`, each sample
    already is the model's full input shape, and outputs keep theirs.
    """
    from tflite_micro.python.tflite_micro import runtime

    tflite = with_buffers_inside(tflite)
    # the interpreter's default arena (10 x the file size) is too small for models
    # with few weights and large activations
    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=max(len(tflite) * 10, 1 << 22))
    outputs = []
    for sample in np.asarray(inputs):
        interpreter.set_input(sample if batched else sample[np.newaxis, ...], 0)
        interpreter.invoke()
        out = np.array(interpreter.get_output(0))
        outputs.append(out if batched else out[0])
    return np.stack(outputs)


def with_buffers_inside(tflite: bytes) -> bytes:
    """`tflite` with every buffer stored after the flatbuffer (offset and size) moved into
    it; the file itself when there is none."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from farm.models.convert import pack_model

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    outside = [b for b in model.buffers or [] if b.offset > 1 and b.size > 0]
    if not outside:
        return tflite
    for buf in outside:
        end = buf.offset + buf.size
        if end > len(tflite):
            raise ValueError(f"a buffer at offset {buf.offset} ({buf.size} bytes) ends past the file "
                             f"({len(tflite)} bytes)")
        buf.data = np.frombuffer(tflite[buf.offset:end], dtype=np.uint8)
        buf.offset = buf.size = 0
    return pack_model(model)


def run_tflite(tflite: bytes, inputs: np.ndarray, *, batched: bool = False) -> np.ndarray:
    """Outputs of tf.lite.Interpreter for each input (see `run_tflm` for `batched`)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for sample in np.asarray(inputs):
        interpreter.set_tensor(in_index, sample if batched else sample[np.newaxis, ...])
        interpreter.invoke()
        out = np.array(interpreter.get_tensor(out_index))
        outputs.append(out if batched else out[0])
    return np.stack(outputs)


#: variant -> the host reference runner for it
REFERENCES: dict[str, Callable[[bytes, np.ndarray], np.ndarray]] = {
    "float32": run_tflite,
    "int8-weights": run_tflite,
    "int8": run_tflm,
}


def run_reference(tflite: bytes, variant: str, inputs: np.ndarray) -> np.ndarray:
    try:
        runner = REFERENCES[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(REFERENCES)})") from None
    return runner(tflite, inputs)


@dataclass(frozen=True)
class TflmArena:
    """What the tflite-micro interpreter allocates in its tensor arena for a model
    (its RecordingMicroAllocator's report after AllocateTensors)."""

    total: int  # bytes of arena the interpreter needs: head + tail
    head: int  # non-persistent: the planned activation tensors and scratch buffers
    tail: int  # persistent: tensor structs, quantization data, op data, node structs


_ARENA_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_arena(tflite: bytes) -> TflmArena:
    """The tflite-micro interpreter's arena use for `tflite` (``print_allocations``,
    whose native output is captured here). Runs in a child process: the native
    report goes to the process's stdout, which a child owns alone."""
    code = ("import sys; from tflite_micro.python.tflite_micro import runtime; "
            "data = sys.stdin.buffer.read(); "
            "it = runtime.Interpreter.from_bytes(data, arena_size=max(len(data) * 10, 1 << 22)); "
            "sys.stdout.flush(); it.print_allocations()")
    result = subprocess.run([sys.executable, "-c", code], input=tflite, capture_output=True, timeout=300)
    text = (result.stdout + result.stderr).decode(errors="replace")
    found = {kind: int(n) for kind, n in _ARENA_LINE.findall(text)}
    if result.returncode != 0 or set(found) != {"total", "head", "tail"}:
        raise RuntimeError(f"tflite-micro did not report its arena (exit {result.returncode}): {text[-2000:]}")
    return TflmArena(total=found["total"], head=found["head"], tail=found["tail"])
