"""SCons builder of the tinyfarm emulated-board platform.

Bare-metal, no framework: the sources are the project's own (generated model,
harness and kernels as libraries). The machine flags (-mcpu, -mfloat-abi, -march,
...) come from the board option ``build.machine_flags``, which tinyfarm sets per
device from its capability model (``board_build.machine_flags`` in platformio.ini).
They go to the compiler, the assembler and the linker alike, so that the linker
picks the matching multilib (soft-float vs hard-float libgcc and libc).
"""

import os

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # type: ignore

env = DefaultEnvironment()
board = env.BoardConfig()
platform_dir = env.PioPlatform().get_dir()

TOOLCHAIN_PREFIX = {"arm": "arm-none-eabi-", "riscv": "riscv64-unknown-elf-", "avr": "avr-"}
# The C library per architecture: newlib-nano for Arm (libnewlib-arm-none-eabi),
# picolibc for RISC-V (picolibc-riscv64-unknown-elf; Debian ships no RISC-V newlib).
# picolibc's specs file goes to the compiler too: it adds the path of its headers.
LIBC = {
    "arm": {"cc_specs": [], "link_specs": ["--specs=nano.specs"], "libs": ["c_nano", "gcc"]},
    "riscv": {"cc_specs": ["--specs=picolibc.specs"], "link_specs": ["--specs=picolibc.specs"],
              "libs": ["c", "gcc"]},
    # avr-libc (Debian avr-libc) with gcc-avr's libgcc: its own startup files and linker
    # script per -mmcu; libm holds the soft-float helpers (__addsf3, __mulsf3, ...)
    "avr": {"cc_specs": [], "link_specs": [], "libs": ["m", "c", "gcc"]},
}
arch = board.get("build.arch", "arm")
prefix = TOOLCHAIN_PREFIX[arch]
libc = LIBC[arch]

env.Replace(
    AR=prefix + "gcc-ar",
    AS=prefix + "gcc",
    CC=prefix + "gcc",
    CXX=prefix + "g++",
    GDB=prefix + "gdb",
    OBJCOPY=prefix + "objcopy",
    RANLIB=prefix + "gcc-ranlib",
    SIZETOOL=prefix + "size",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.rodata|\.ARM\.exidx)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

machine_flags = board.get("build.machine_flags", "").split()
if arch == "avr":  # the chip is the board's: -mmcu from its board file
    machine_flags = ["-mmcu=" + board.get("build.mcu")] + machine_flags
harness_board = board.get("build.harness_board")
# board-specific harness settings, e.g. "PROTO_MAX_PAYLOAD=512u" on a board with little RAM
harness_defines = [tuple(d.split("=", 1)) if "=" in d else d
                   for d in board.get("build.harness_defines", "").split()]
ldscript = os.path.join(platform_dir, "ldscripts", board.get("build.ldscript")) if board.get(
    "build.ldscript", "") else None
# AVR: avr-libc's startup files and the toolchain's linker script for the -mmcu; gnu11 for
# the __flash address space (weights and tables in program memory, read with LPM)
startfiles = [] if arch == "avr" else ["-nostartfiles"]
# AVR: avr-ld's refusal of too much SRAM ("section .bss is not within region data") names no
# byte count; the data region is opened to the 64 KiB data space instead, and the farm's
# preflight (farm.build.fits.check_fits) refuses the ELF against the chip's SRAM with the bytes
if arch == "avr":
    startfiles.append("-Wl,--defsym=__DATA_REGION_LENGTH__=0xfe00")
c_standard = "-std=gnu11" if arch == "avr" else "-std=c11"
# Arm and RISC-V: GCC writes each function's frame (-fstack-usage: a .su file per object; no
# change to the code), from which tinyfarm bounds the stack (farm/build/stack.py) and sizes the
# reservation: the file stack_size in the project folder holds the bytes, linked as
# __stack_size (the linker scripts' .stack section; without the file, their fixed default).
# "probe": tinyfarm's first link, for the bound: no stack, and the RAM region opened (16 MiB,
# __ram_length__) so that it links whatever the size; the second link has the real region.
# A changed size only relinks (the link command changes, no object does).
stack_flags = [] if arch == "avr" else ["-fstack-usage"]
stack_link = []
stack_file = os.path.join(env.subst("$PROJECT_DIR"), "stack_size")
if arch != "avr" and os.path.isfile(stack_file):
    with open(stack_file, encoding="ascii") as fh:
        stack_text = fh.read().strip()
    if stack_text == "probe":
        stack_link = ["-Wl,--defsym=__stack_size=0", "-Wl,--defsym=__ram_length__=0x1000000"]
    else:
        stack_link = ["-Wl,--defsym=__stack_size=%d" % int(stack_text)]

env.Append(
    ASFLAGS=machine_flags + ["-x", "assembler-with-cpp"],
    CCFLAGS=machine_flags
    + libc["cc_specs"]
    + [
        "-ffunction-sections",
        "-fdata-sections",
        "-ffreestanding",
        "-fno-common",
        "-Wall",
        "-Wextra",
    ]
    + stack_flags,
    CFLAGS=[c_standard],
    CPPDEFINES=[
        ("F_CPU", board.get("build.f_cpu")),
        "HARNESS_BOARD_" + harness_board,
        ("HARNESS_MCU", board.get("build.mcu")),
    ]
    + harness_defines,
    LINKFLAGS=machine_flags
    + startfiles
    + libc["link_specs"]
    + [
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
        "-L" + os.path.join(platform_dir, "ldscripts"),
    ]
    + stack_link,
    LIBS=libc["libs"],
)
if ldscript:
    env.Replace(LDSCRIPT_PATH=ldscript)

target_elf = env.BuildProgram()
AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))
Default([target_elf])
