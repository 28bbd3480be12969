"""The model's constants in AVR program memory (TF_CONST_DATA, tf_types.h).

* The generated C qualifies every constant array (weights, biases, per-channel
  multipliers and shifts, packed weights, output-stage channels, lookup tables) with
  TF_CONST_DATA and nothing else (the dims and parameter structs stay plain).
* Compiled with avr-gcc the arrays land in program memory (.progmem.data.*), read with
  LPM; compiled for Arm the macro is empty and the object is the same bytes as the
  source with the qualifier removed: the Arm and RISC-V code is unchanged.
* preflight's 64 KiB check (farm.build.fits): an AVR ELF whose program-memory data ends
  above what __flash reaches is refused with the model, the bytes and the limit.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from elftools.elf.elffile import ELFFile

from farm.build.fits import AVR_FLASH_DATA_REACH, DoesNotFit, check_fits, flash_data_end
from farm.codegen import generate
from fixtures_models import KERNELS, conv_tflite, model_cache_dir, sine_artifacts  # noqa: F401

ARRAY = re.compile(r"^static const (TF_CONST_DATA )?([\w ]+?) (\*const TF_CONST_DATA )?(\w+)\[\d*\]", re.M)


def _arrays(source: str) -> dict[str, bool]:
    """Every array the generated C defines -> whether it is TF_CONST_DATA."""
    found = {}
    for m in ARRAY.finditer(source):
        found[m.group(4)] = bool(m.group(1) or m.group(3))
    return found


def _symbol_sections(obj: Path) -> dict[str, str]:
    with obj.open("rb") as fh:
        elf = ELFFile(fh)
        sections = list(elf.iter_sections())
        return {s.name: sections[s["st_shndx"]].name for s in elf.get_section_by_name(".symtab").iter_symbols()
                if s["st_info"]["type"] == "STT_OBJECT" and isinstance(s["st_shndx"], int)}


@pytest.fixture(scope="module")
def generated(sine_artifacts, conv_tflite, tmp_path_factory) -> dict[str, Path]:  # noqa: F811
    out = {}
    for variant in ("int8", "float32", "int8-weights"):
        d = tmp_path_factory.mktemp(f"sine-{variant}")
        generate(sine_artifacts[variant].tflite_path, d, name="sine", variant=variant)
        out[f"sine-{variant}"] = d
    d = tmp_path_factory.mktemp("conv-float32")
    generate(conv_tflite, d, name="conv", variant="float32")
    out["conv-float32"] = d
    return out


@pytest.mark.requires_tool("avr-gcc")
@pytest.mark.parametrize("case", ["sine-int8", "sine-float32", "sine-int8-weights", "conv-float32"])
def test_generated_constants_are_in_avr_program_memory(case: str, generated, tmp_path: Path):
    folder = generated[case]
    source = (folder / "model.c").read_text()
    arrays = _arrays(source)
    assert arrays and all(arrays.values()), f"arrays without TF_CONST_DATA: {[a for a, q in arrays.items() if not q]}"
    assert "static const TF_CONST_DATA tf_dims" not in source  # the small structs stay plain
    obj = tmp_path / "model.o"
    build = subprocess.run(["avr-gcc", "-mmcu=atmega2560", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                            "-ffunction-sections", "-fdata-sections", f"-I{KERNELS / 'include'}", f"-I{folder}",
                            "-c", str(folder / "model.c"), "-o", str(obj)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    sections = _symbol_sections(obj)
    for name in arrays:
        assert sections.get(name, "").startswith(".progmem.data"), (name, sections.get(name))
    assert not [n for n, s in sections.items() if s.startswith(".data") and n in arrays]


@pytest.mark.requires_tool("arm-none-eabi-gcc", "arm-none-eabi-objdump")
@pytest.mark.parametrize("case", ["sine-int8", "sine-float32", "conv-float32"])
def test_arm_object_unchanged_by_the_qualifier(case: str, generated, tmp_path: Path):
    """On Arm TF_CONST_DATA is empty: the object is byte for byte the one of the same
    source without the qualifier (the arrays in .rodata, as before)."""
    folder = generated[case]
    source = (folder / "model.c").read_text()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.c").write_text(source.replace("TF_CONST_DATA ", ""))
    (plain / "model_generated.h").write_text((folder / "model_generated.h").read_text())
    dumps = []
    for src in (folder, plain):
        obj = tmp_path / f"{src.name}.o"
        build = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                "-mfpu=fpv4-sp-d16", "-std=c11", "-O2", "-Wall", "-Werror", "-ffunction-sections",
                                "-fdata-sections", f"-I{KERNELS / 'include'}", f"-I{src}", "-c", str(src / "model.c"),
                                "-o", str(obj)], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        dumps.append(subprocess.run(["arm-none-eabi-objdump", "-s", "-d", str(obj)], capture_output=True,
                                    text=True, check=True).stdout.split("\n", 2)[2])
        sections = _symbol_sections(obj)
        assert all(sections[name].startswith(".rodata") for name in _arrays(source)), sections
    assert dumps[0] == dumps[1]


@pytest.mark.requires_tool("avr-gcc")
def test_flash_data_beyond_64_kib_is_refused_with_model_and_bytes(tmp_path: Path):
    """Three 30,000-byte __flash arrays (90,000 bytes: more than __flash reaches) linked
    for the ATmega2560: flash_data_end finds where they end, check_fits refuses."""
    (tmp_path / "model_generated.h").write_text('#define MODEL_NAME "big"\n')
    arrays = "".join(f"static const __flash int8_t w{i}[30000] = {{{i + 1}}};\n" for i in range(3))
    (tmp_path / "big.c").write_text(
        "#include <stdint.h>\n" + arrays + "volatile int8_t sink;\n"
        "int main(void) { sink = w0[sink] + w1[sink] + w2[sink]; return 0; }\n")
    elf = tmp_path / "big.elf"
    build = subprocess.run(["avr-gcc", "-mmcu=atmega2560", "-std=gnu11", "-O2", str(tmp_path / "big.c"), "-o",
                            str(elf)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    end, size = flash_data_end(elf)
    assert size >= 90_000 and end > AVR_FLASH_DATA_REACH
    device = SimpleNamespace(name="avr-mega2560", flash_bytes=262144, ram_bytes=8192)
    fw = SimpleNamespace(flash_bytes=end, ram_bytes=100, build=SimpleNamespace(elf=elf),
                         generated=SimpleNamespace(header=tmp_path / "model_generated.h"))
    with pytest.raises(DoesNotFit) as refused:
        check_fits(device, fw)
    message = str(refused.value)
    assert f"model big's constants ({size} bytes in program memory) end at byte {end}" in message
    assert "low 64 KiB (65536 bytes)" in message
