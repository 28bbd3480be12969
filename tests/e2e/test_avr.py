"""The 8-bit AVR boards on simavr: real cycles, measured by the chip's own Timer1.

* sine int8 through the farm's own job path (``measure_one``, as ``farm run`` does) on
  the ATmega2560 and the ATmega1284P: bit-exact with tflite-micro, counts in cycles
  (not an estimate), identical from window to window and from run to run.
* The cross-check: a calibration "model" whose ``model_invoke`` is a hand-written loop
  of a known cycle count. The farm's figure (the harness's Timer1 at clk/1 plus its
  overflow count, the overflow handler's cycles taken out) must be that count exactly;
  simavr's own cycle counter, reported by the runner at two writes of a pin inside the
  loop, must be the loop's cycles plus a whole number of overflow handlers of the
  length the harness measured at boot -- the difference explained to the cycle.
* A handler-less interrupt is reported as a FAULT frame (arch 3, AVR) and decoded.
* The model's constants live in program memory (``__flash``, read with LPM): the int8
  ELF's weight arrays are objects of .text, .data holds no model constant, and the
  int8 requantization calls no 64-bit libgcc multiply (fixed_point.h's TF_MUL_PARTS);
  sine and digits int8 stay bit-exact on both chips, digits float32 now fits the 8 KiB
  ATmega2560, and a model whose activations are too big for 8 KiB is still refused
  before flashing with the bytes needed and available.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from farm.board.faults import decode_fault
from farm.board.session import DeviceFault, Session
from farm.board.simavr import SimavrBoard, avr_cycles_per_inference
from farm.build.firmware import BuildTarget, build_firmware
from farm.config.inventory import load_inventory
from farm.config.machine_flags import machine_flags
from farm.measure.timing import MeasurePlan, measure_timing

pytestmark = pytest.mark.requires_tool("avr-gcc", "avr-objdump", "simavr", "gcc")

REPO = Path(__file__).resolve().parents[2]

#: iterations of the calibration loop: 4 cycles each (sbiw 2 + brne taken 2), the last 3
LOOP = 50_000

CALIB_HEADER = f"""\
#ifndef MODEL_GENERATED_H
#define MODEL_GENERATED_H
#include <stdint.h>
#define MODEL_NAME "avr-calib"
#define MODEL_VARIANT "int8"
#define MODEL_HASH "0000000000000000"
#define MODEL_INPUT_BYTES 8
#define MODEL_OUTPUT_BYTES 8
#define MODEL_ARENA_BYTES 16
#define CALIB_LOOP {LOOP}
int32_t model_invoke(void);
uint8_t *model_input(void);
const uint8_t *model_output(void);
#endif
"""

# model_invoke, cycle by cycle:
#   sbi PORTB,6 (2) | ldi, ldi (2) | LOOP x (sbiw 2 + brne 2) - 1 | cbi PORTB,6 (2)
#   | ldi, ldi, movw: the int32 result 0 (3) | ret (5 with the ATmega2560's 3-byte PC, 4 on the
#   ATmega1284P's 2-byte one)                = 4 LOOP + 8 + ret cycles, entry to return
# simavr reports its counter as each pin write begins: from sbi to cbi, 2 + 2 + 4 LOOP - 1.
CALIB_SOURCE = textwrap.dedent("""\
    #include <avr/io.h>
    #include "model_generated.h"

    static uint8_t arena[MODEL_ARENA_BYTES];
    uint8_t *model_input(void) { return arena; }
    const uint8_t *model_output(void) { return arena + 8; }

    __attribute__((constructor)) static void calib_init(void) { DDRB |= _BV(PB6); }

    #define STR2(x) #x
    #define STR(x) STR2(x)
    /* PORTB is I/O address 0x05 on the ATmega2560 and the ATmega1284P */
    __asm__(
        ".text\\n"
        ".global model_invoke\\n"
        ".type model_invoke, @function\\n"
        "model_invoke:\\n"
        "  sbi 0x05, 6\\n"
        "  ldi r24, lo8(" STR(CALIB_LOOP) ")\\n"
        "  ldi r25, hi8(" STR(CALIB_LOOP) ")\\n"
        "1: sbiw r24, 1\\n"
        "  brne 1b\\n"
        "  cbi 0x05, 6\\n"
        "  ldi r22, 0\\n"
        "  ldi r23, 0\\n"
        "  movw r24, r22\\n"
        "  ret\\n"
        ".size model_invoke, .-model_invoke\\n");
    """)
#: board -> (simavr mcu, cycles of ret)
RET_CYCLES = {"avr-mega2560": ("atmega2560", 5), "avr-1284p": ("atmega1284p", 4)}

# an interrupt without a handler: Timer0 overflows 256 cycles after model_invoke enables it
FAULT_SOURCE = textwrap.dedent("""\
    #include <avr/io.h>
    #include "model_generated.h"

    static uint8_t arena[MODEL_ARENA_BYTES];
    uint8_t *model_input(void) { return arena; }
    const uint8_t *model_output(void) { return arena + 8; }

    int32_t model_invoke(void) {
      TCCR0B = _BV(CS00);
      TIMSK0 = _BV(TOIE0);
      for (;;) {
      }
    }
    """)


@pytest.fixture(scope="module")
def avr_devices():
    """The two AVR boards of the default inventory (devices.yaml)."""
    inventory = load_inventory(REPO / "devices.yaml")
    return inventory.device("avr-mega2560"), inventory.device("avr-1284p")


@pytest.mark.parametrize("name", ["avr-mega2560", "avr-1284p"])
def test_sine_int8_is_bit_exact_and_counts_cycles(name: str, avr_devices, state_dir: Path):
    from farm.measure.job import measure_one

    device = next(d for d in avr_devices if d.name == name)
    plan = MeasurePlan(warmup=1, windows=3, inferences_per_window=4)
    first = measure_one(device, "sine", "int8", state=state_dir, plan=plan)
    assert first.status == "ok", first.message
    assert first.unit == "cycles" and first.latency_is_estimate is False
    assert first.bit_exact_fraction == 1.0 and first.max_abs_error == 0.0
    assert first.details["float_kind"] == "float-free"
    assert first.ram_bytes <= device.ram_bytes and first.flash_bytes <= device.flash_bytes
    assert len(set(first.window_counts)) == 1, "a cycle-accurate core: every window the same"
    assert first.count_median == int(first.count_median) and 5_000 < first.count_median < 500_000
    assert first.latency_us == pytest.approx(first.count_median / 16.0)  # count / clock, 16 MHz
    again = measure_one(device, "sine", "int8", state=state_dir, plan=plan)
    assert again.window_counts == first.window_counts, "identical from run to run"


@pytest.fixture(scope="module")
def wide_input_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An int8 model whose activations alone outgrow 8 KiB: a 9,000-value input into a
    Dense of 2 (18,000 bytes of weights, which program memory holds)."""
    import keras
    import numpy as np

    from farm.models.convert import to_int8

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((9000,), batch_size=1), keras.layers.Dense(2)])
    path = tmp_path_factory.mktemp("wide") / "wide_input.tflite"
    path.write_bytes(to_int8(model, np.random.default_rng(5).normal(size=(16, 9000)).astype(np.float32)))
    return path


def test_a_model_too_big_for_8_kib_is_refused_before_flashing(avr_devices, state_dir: Path, wide_input_tflite: Path):
    """Weights in program memory do not make the activations smaller: a 9,000-byte input
    tensor (and the arena around it) is more SRAM than the ATmega2560's 8 KiB. Refused by
    preflight with the bytes needed and available, before any board is started."""
    from farm.measure.job import measure_one
    from farm.models.user_tflite import user_artifacts

    mega = avr_devices[0]
    art = user_artifacts(wide_input_tflite, state_dir / "models")
    r = measure_one(mega, art.name, art.variant, state=state_dir, artifacts=art)
    assert r.status == "does-not-fit", r.message
    # the sentence of preflight (or of the memory plan before building, without ELF sizes)
    found = re.search(r"RAM: needs (?:at least )?(\d+) bytes[^;]*, avr-mega2560 has 8192", r.message)
    assert found, r.message
    needed = int(found.group(1))
    assert needed > 9000 and r.ram_bytes in (None, needed)
    assert r.count_median is None and r.window_counts is None  # nothing was run


def _elf_objects(elf: Path) -> dict[str, str]:
    """Data object symbol -> the ELF section it is in."""
    from elftools.elf.elffile import ELFFile

    with elf.open("rb") as fh:
        f = ELFFile(fh)
        sections = list(f.iter_sections())
        return {s.name: sections[s["st_shndx"]].name for s in f.get_section_by_name(".symtab").iter_symbols()
                if s["st_info"]["type"] == "STT_OBJECT" and isinstance(s["st_shndx"], int)}


@pytest.mark.parametrize("model", ["sine", "digits"])
def test_int8_weights_are_in_program_memory_and_no_64_bit_multiply(model: str, avr_devices, state_dir: Path,
                                                                   tmp_path: Path):
    """The generated constant arrays (weights, packed weights, output-stage channels,
    lookup tables) are objects of .text (avr-libc's .progmem, read with LPM), none of them
    in .data; the SRAM figure preflight checks is .data + .bss; the int8 ELF calls none of
    libgcc's 64-bit multiplies (__muldi3, __mulsidi3)."""
    from farm.build.elf import elf_sizes, read_functions
    from farm.build.prepare import prepare_firmware
    from farm.models.variants import build_variant

    mega = avr_devices[0]
    art = build_variant(model, "int8", state_dir / "models")
    fw = prepare_firmware(art.tflite_path, model, "int8", mega, state_dir)
    from farm.codegen import generate

    source = generate(art.tflite_path, tmp_path, name=model, variant="int8").source.read_text()  # the same C
    arrays = re.findall(r"^static const TF_CONST_DATA [\w ]+? (\w+)\[", source, re.M)
    assert arrays and not re.search(r"^static const (?!TF_CONST_DATA)[\w ]+ \w+\[", source, re.M)
    objects = _elf_objects(fw.build.elf)
    assert {objects[a] for a in arrays if a in objects} == {".text"}
    kept = [a for a in arrays if a in objects]
    assert len(kept) >= len(arrays) - 1, (arrays, kept)  # at most an unread one dropped by the compiler
    sizes = elf_sizes(fw.build.elf)
    assert fw.ram_bytes == sizes.sections.get(".data", 0) + sizes.sections.get(".bss", 0)
    assert sizes.sections.get(".data", 0) < 1024, sizes.sections  # the harness's strings and small structs
    names = {n for f in read_functions(fw.build.elf).functions for n in f.names}
    assert not names & {"__muldi3", "__mulsidi3"}, sorted(names & {"__muldi3", "__mulsidi3"})


@pytest.mark.parametrize("name", ["avr-mega2560", "avr-1284p"])
def test_digits_int8_is_bit_exact_in_cycles(name: str, avr_devices, state_dir: Path):
    from farm.measure.job import measure_one

    device = next(d for d in avr_devices if d.name == name)
    r = measure_one(device, "digits", "int8", state=state_dir,
                    plan=MeasurePlan(warmup=1, windows=2, inferences_per_window=1))
    assert r.status == "ok", r.message
    assert r.unit == "cycles" and r.latency_is_estimate is False
    assert r.bit_exact_fraction == 1.0 and r.max_abs_error == 0.0
    assert r.details["float_kind"] == "float-free"
    assert len(set(r.window_counts)) == 1
    assert r.ram_bytes <= device.ram_bytes


def test_digits_float32_fits_the_8_kib_board_within_tolerance(avr_devices, state_dir: Path):
    """With its 10 KB of float weights in program memory, digits float32 needs less SRAM
    than the ATmega2560's 8 KiB and runs there (soft-float) within the float tolerance."""
    from farm.measure.job import OUTPUT_TOLERANCE, measure_one

    mega = avr_devices[0]
    r = measure_one(mega, "digits", "float32", state=state_dir,
                    plan=MeasurePlan(warmup=0, windows=1, inferences_per_window=1))
    assert r.status == "ok", r.message
    assert r.ram_bytes <= 8192 and r.unit == "cycles"
    assert r.details["float_kind"] == "soft-float"
    assert r.max_abs_error <= OUTPUT_TOLERANCE["float32"]


def _build(tmp_path_factory: pytest.TempPathFactory, mega, source: str, state_dir: Path) -> Path:
    model = tmp_path_factory.mktemp("avr-calib")
    (model / "model_generated.h").write_text(CALIB_HEADER)
    (model / "model.c").write_text(source)
    build = build_firmware(model, BuildTarget(mega.board, machine_flags(mega.core, mega.fpu, mega.dsp)), state_dir)
    assert build.compiler.startswith("avr-gcc") and build.float_abi == "soft"
    return build.elf




def _pin_cycles(log: Path) -> list[tuple[int, int]]:
    """The runner's reports of the pin's writes, from the first high one (the boot's DDRB
    write reports the pin low first)."""
    edges = [(int(v), int(c)) for v, c in re.findall(r"^pin (\d) cycle (\d+)$", log.read_text(), re.M)]
    first_high = next(i for i, (v, _) in enumerate(edges) if v == 1)
    return edges[first_high:]


@pytest.mark.parametrize("name", ["avr-mega2560", "avr-1284p"])
def test_timer_count_is_the_known_loop_and_simavrs_counter_is_explained(name: str, avr_devices, state_dir: Path,
                                                                       tmp_path_factory: pytest.TempPathFactory,
                                                                       tmp_path: Path):
    device = next(d for d in avr_devices if d.name == name)
    mcu, ret = RET_CYCLES[name]
    calib_cycles = 4 * LOOP + 8 + ret
    elf = _build(tmp_path_factory, device, CALIB_SOURCE, state_dir)
    log = tmp_path / "runner.log"
    n = 4
    counts = []
    with SimavrBoard(mcu, device.clock_hz, elf, state_dir, log_path=log, report_pin="B6") as board:
        session = Session(board.connect(), timeout=10)
        identity = session.wait_ready()
        assert (identity["board"], identity["timer"], identity["timer_hz"]) == (mcu, "timer1", "16000000")
        assert identity["null_invoke_cycles"] == str(3 + ret)  # ldi, ldi, movw + ret
        isr = int(identity["timer_isr_cycles"])
        assert 20 <= isr <= 200, "the overflow handler's cycles, measured by the harness at boot"
        for _ in range(2):
            timing = measure_timing(session, bytes(range(8)),
                                    MeasurePlan(warmup=0, windows=1, inferences_per_window=n),
                                    "cycles", avr_cycles_per_inference, timeout_per_inference=10)
            counts += timing.window_counts
        session.transport.close()
    # the harness's count (Timer1 at clk/1 + overflows, the handlers' cycles out): the loop, exactly,
    # although each inference spans three overflows and each window of n a dozen
    assert counts == [calib_cycles, calib_cycles]
    # simavr's own counter from the sbi to the cbi: the loop's cycles plus whole overflow handlers
    # of the length the harness measured at boot, one per 65,536 cycles (the phase decides 3 or 4)
    edges = _pin_cycles(log)
    assert [v for v, _ in edges] == [1, 0] * (2 * n), edges
    loop_cycles = 2 + 2 + 4 * LOOP - 1
    for i in range(0, len(edges), 2):
        span = edges[i + 1][1] - edges[i][1]
        handlers, rest = divmod(span - loop_cycles, isr)
        assert rest == 0, f"simavr counted {span} cycles: {loop_cycles} + {handlers} x {isr} + {rest}"
        assert loop_cycles // 65536 <= handlers <= loop_cycles // 65536 + 1


def test_a_handler_less_interrupt_is_reported_and_decoded(tmp_path_factory: pytest.TempPathFactory, avr_devices,
                                                          state_dir: Path):
    elf = _build(tmp_path_factory, avr_devices[0], FAULT_SOURCE, state_dir)
    with SimavrBoard("atmega2560", 16_000_000, elf, state_dir) as board:
        session = Session(board.connect(), timeout=10)
        session.wait_ready()
        session.load_input(bytes(8))
        with pytest.raises(DeviceFault) as info:
            session.run(1, timeout=10)
        session.transport.close()
    words = info.value.words
    assert words[:2] == (3, 1)  # AVR, an interrupt without a handler
    report = decode_fault(words, elf)
    assert report.kind == "bad interrupt"
    assert report.sentence.startswith("an interrupt without a handler (avr-libc's BADISR_vect)")


@pytest.mark.parametrize("variant", ["float32", "int8-weights"])
def test_float_variants_are_avr_libc_soft_float_within_tolerance(variant: str, avr_devices, state_dir: Path):
    """No AVR has an FPU: float32 and int8-weights run on avr-libc's soft-float (double is
    32-bit there), within the float tolerance of the host reference; the preflight names
    the helpers on the inference path, and the int8 build has none of them."""
    from farm.build.prepare import prepare_firmware
    from farm.measure.job import OUTPUT_TOLERANCE, measure_one
    from farm.models.variants import build_variant
    from farm.preflight.portability import check_device

    device = avr_devices[1]
    r = measure_one(device, "sine", variant, state=state_dir,
                    plan=MeasurePlan(warmup=1, windows=2, inferences_per_window=2))
    assert r.status == "ok", r.message
    assert r.unit == "cycles" and r.details["float_kind"] == "soft-float"
    assert r.max_abs_error <= OUTPUT_TOLERANCE[variant]
    art = build_variant("sine", variant, state_dir / "models")
    fw = prepare_firmware(art.tflite_path, "sine", variant, device, state_dir)
    report = check_device(fw.build.elf, device, variant)
    assert report.portable and not report.fpu_instructions
    helpers = set(report.softfloat_helpers)  # avr-libc's add enters through __subsf3's code
    assert "__mulsf3" in helpers and helpers & {"__addsf3", "__subsf3"}, helpers
    int8 = build_variant("sine", "int8", state_dir / "models")
    assert check_device(prepare_firmware(int8.tflite_path, "sine", "int8", device, state_dir).build.elf,
                        device, "int8").float_free
