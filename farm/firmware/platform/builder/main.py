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

TOOLCHAIN_PREFIX = {"arm": "arm-none-eabi-", "riscv": "riscv64-unknown-elf-"}
# The C library per architecture: newlib-nano for Arm (libnewlib-arm-none-eabi),
# picolibc for RISC-V (picolibc-riscv64-unknown-elf; Debian ships no RISC-V newlib).
# picolibc's specs file goes to the compiler too: it adds the path of its headers.
LIBC = {
    "arm": {"cc_specs": [], "link_specs": ["--specs=nano.specs"], "libs": ["c_nano", "gcc"]},
    "riscv": {"cc_specs": ["--specs=picolibc.specs"], "link_specs": ["--specs=picolibc.specs"],
              "libs": ["c", "gcc"]},
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
harness_board = board.get("build.harness_board")
# board-specific harness settings, e.g. "PROTO_MAX_PAYLOAD=512u" on a board with little RAM
harness_defines = [tuple(d.split("=", 1)) if "=" in d else d
                   for d in board.get("build.harness_defines", "").split()]
ldscript = os.path.join(platform_dir, "ldscripts", board.get("build.ldscript"))

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
    ],
    CFLAGS=["-std=c11"],
    CPPDEFINES=[
        ("F_CPU", board.get("build.f_cpu")),
        "HARNESS_BOARD_" + harness_board,
        ("HARNESS_MCU", board.get("build.mcu")),
    ]
    + harness_defines,
    LINKFLAGS=machine_flags
    + [
        "-nostartfiles",
    ]
    + libc["link_specs"]
    + [
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
        "-L" + os.path.join(platform_dir, "ldscripts"),
    ],
    LIBS=libc["libs"],
)
env.Replace(LDSCRIPT_PATH=ldscript)

target_elf = env.BuildProgram()
AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))
Default([target_elf])
