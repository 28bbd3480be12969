"""Fixtures and helpers for the model / codegen / kernel tests.

- `model_cache_dir` (session): the model cache the tests build into:
  ``$FARM_HOME/models`` when FARM_HOME is set (tests/conftest.py sets it, so
  unchanged models are not retrained between runs), else a session temp dir.
- `sine_artifacts` (session): ModelArtifacts of the sine model, per variant.
- `build_host_model`: generate C for a .tflite and compile it with the host gcc
  together with the kernels and tests/host_driver/main.c.
- `run_host_model(exe, inputs, dtype)`: feed inputs through the compiled driver.

Until tests/conftest.py registers this module (``pytest_plugins``), test modules
import the fixtures they use from it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fixtures_tools import require_tool

REPO = Path(__file__).resolve().parent.parent
KERNELS = REPO / "farm" / "firmware" / "lib" / "kernels"
HOST_DRIVER = REPO / "tests" / "host_driver" / "main.c"
HOST_CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Werror")


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    farm_home = os.environ.get("FARM_HOME")
    if farm_home:
        path = Path(farm_home) / "models"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def sine_artifacts(model_cache_dir: Path) -> dict:
    from farm.models import VARIANTS, build_variant

    return {variant: build_variant("sine", variant, model_cache_dir) for variant in VARIANTS}


_KERNEL_LIBRARY: dict[str, Path] = {}


def host_kernel_library() -> Path:
    """The kernel library compiled once per test session with the host gcc (a static archive)."""
    if "lib" in _KERNEL_LIBRARY:
        return _KERNEL_LIBRARY["lib"]
    require_tool("gcc")
    require_tool("ar")
    out_dir = Path(tempfile.mkdtemp(prefix="farm-host-kernels-"))
    objects = []
    for src in sorted((KERNELS / "src").glob("*.c")):
        obj = out_dir / (src.stem + ".o")
        result = subprocess.run(["gcc", *HOST_CFLAGS, f"-I{KERNELS / 'include'}", "-c", str(src), "-o", str(obj)],
                                capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, f"{src.name}:\n{result.stderr}"
        objects.append(str(obj))
    library = out_dir / "libkernels.a"
    subprocess.run(["ar", "rcs", str(library), *objects], check=True, capture_output=True)
    _KERNEL_LIBRARY["lib"] = library
    return library


def compile_host_model(tflite_path: Path, out_dir: Path, *, name: str = "test", variant: str = "test",
                       kernels: str = "optimized") -> Path:
    """Generate C for `tflite_path` into out_dir and link it with the host driver and kernels
    (`kernels`: the code generator's kernel set, "optimized" or "reference")."""
    from farm.codegen import generate

    require_tool("gcc")  # missing: skip, or FAIL in CI (tests/fixtures_tools.py)
    gen = generate(tflite_path, out_dir, name=name, variant=variant, kernels=kernels)
    exe = out_dir / "model_host"
    cmd = ["gcc", *HOST_CFLAGS, f"-I{KERNELS / 'include'}", f"-I{out_dir}",
           str(gen.source), str(HOST_DRIVER), str(host_kernel_library()), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, f"host build failed:\n{result.stderr}"
    return exe


@pytest.fixture
def build_host_model(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def build(tflite_path: Path, **kwargs: str) -> Path:
        return compile_host_model(tflite_path, tmp_path / f"gen{next(counter)}", **kwargs)

    return build


def run_host_model(exe: Path, inputs: np.ndarray, out_dtype: np.dtype | type, out_shape: tuple[int, ...]) -> np.ndarray:
    """Run every input (N x input shape) through the driver; N x out_shape outputs."""
    data = np.ascontiguousarray(inputs).tobytes()
    result = subprocess.run([str(exe)], input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, f"{exe.name} exited {result.returncode}: {result.stderr.decode()}"
    out = np.frombuffer(result.stdout, dtype=np.dtype(out_dtype).newbyteorder("<"))
    return out.reshape((len(inputs),) + tuple(out_shape))


@pytest.fixture(scope="session")
def conv_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny float32 Keras Conv2D model (its first operator is CONV_2D)."""
    import keras

    from farm.models.convert import to_float32

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1), batch_size=1),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(2),
    ])
    path = tmp_path_factory.mktemp("conv") / "tiny_conv.tflite"
    path.write_bytes(to_float32(model))
    return path
