#!/usr/bin/env bash
# One-time (idempotent) set-up of a Debian 12 machine for tinyfarm:
#   1. Debian packages (--no-install-recommends): the host C compiler (the kernel and codegen
#      tests build and run the generated C on this machine), the Arm and RISC-V cross
#      toolchains, QEMU, OpenSSH, PostgreSQL (the test server for the results store), Chromium
#      (renders the HTML report in a test), git (the commit a result was measured at). With
#      CI set, a test whose tool is missing fails instead of skipping (tests/fixtures_tools.py
#      lists the tools and their packages),
#   2. a virtualenv at .venv with tinyfarm installed editable (pip install -e .[dev]),
#   3. the offline PlatformIO core dir in the project's state folder (.farm/pio-core).
# A second run only checks and skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gcc libc6-dev binutils git
  gcc-arm-none-eabi libnewlib-arm-none-eabi
  qemu-system-arm qemu-system-misc
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  gcc-avr avr-libc binutils-avr simavr libsimavr-dev
  openssh-server openssh-client python3-serial
  python3-venv
  postgresql chromium
)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: present"
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.tinyfarm-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  say "installing tinyfarm into .venv (pip install -e .[dev])"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
else
  say "Python environment: up to date"
fi

.venv/bin/python -m farm.build.platformio_env
say "ready"
