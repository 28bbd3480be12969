#!/usr/bin/env python3
"""tinyfarm bench-host agent: flash a board and bridge its serial port to stdin/stdout.

This one file is copied to a bench host over SFTP and run there over SSH; the
controller also imports it to flash boards on its own USB ports, so a board is
flashed by the same code wherever it is attached. It needs only Python 3 and
pyserial on the host (plus the flashing tool: PlatformIO for real boards, QEMU
for the emulated boards the test suite uses as stand-ins).

Usage (every value is one argument: the controller builds argument lists and
quotes them with shlex, so nothing in the inventory reaches a shell)::

    agent.py hello
    agent.py flash  --protocol PROTO --port PORT --image FILE [--set KEY=VALUE ...]
    agent.py bridge --protocol PROTO --port PORT [--baud N]
    agent.py stop   --protocol PROTO --port PORT

``flash`` loads the image and leaves the board ready to be released; it prints
one JSON line. ``bridge`` opens the serial port, prints the line
``TINYFARM-BRIDGE OK`` (or ``TINYFARM-BRIDGE ERROR <why>``), releases the board
(QEMU: ``cont`` on its monitor) and then relays raw bytes both ways until stdin
closes or the port goes away; then it stops the board (an emulated board is
powered off; a no-op for real ones), also when the SSH connection dropped.
``stop`` powers an emulated board off.

Flash protocols are classes registered by name (``@flasher("qemu")``); every
other name is a PlatformIO ``upload_protocol`` (stlink, cmsis-dap, jlink,
picotool, esptool, ...) handled by the ``platformio`` flasher.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

AGENT_VERSION = "1"
BRIDGE_OK = b"TINYFARM-BRIDGE OK\n"
BRIDGE_ERROR = b"TINYFARM-BRIDGE ERROR "


class AgentError(RuntimeError):
    """A flash or bridge step failed; the message is shown to the farm's user."""


FLASHERS = {}


def flasher(name):
    def register(cls):
        FLASHERS[name] = cls
        return cls

    return register


def flasher_for(protocol, port, options=None):
    cls = FLASHERS.get(protocol, FLASHERS["platformio"])
    return cls(protocol, port, dict(options or {}))


class Flasher:
    """load(image) -> dict; release() once the console is open; stop()."""

    def __init__(self, protocol, port, options):
        self.protocol = protocol
        self.port = port
        self.options = options

    def load(self, image):
        raise NotImplementedError

    def release(self):
        """Let the board run once the console is open (nothing to do for most boards)."""

    def stop(self):
        """Power the board off (nothing to do for real boards)."""


# --------------------------------------------------------------------------- QEMU


@flasher("qemu")
class QemuFlasher(Flasher):
    """An emulated board as a serial device: "flashing" (re)starts QEMU with the image.

    QEMU's UART is a pseudo-terminal; ``port`` becomes a symlink to it, the way
    /dev/serial/by-id/... points at /dev/ttyACM0. Output written to a pty before
    the other end is open is lost, so QEMU starts halted (-S) and the bridge
    sends ``cont`` on QEMU's monitor socket (a short hashed name in the temp
    folder) once the port is open. QEMU runs in its own session, so it outlives the SSH command that
    started it; ``<port>.pid`` lets the next flash or ``stop`` end it.
    """

    def _paths(self):
        # The monitor socket lives under a short hashed name: a unix socket path has at
        # most 107 bytes, and QEMU would split a path containing ',' into options.
        digest = hashlib.sha256(os.path.abspath(self.port).encode()).hexdigest()[:20]
        sockets = os.path.join(tempfile.gettempdir(), f"tinyfarm-qemu-{os.getuid()}")
        os.makedirs(sockets, mode=0o700, exist_ok=True)
        return os.path.join(sockets, digest + ".monitor"), self.port + ".pid", self.port + ".log"

    def load(self, image):
        self.stop()
        monitor, pid_file, log_file = self._paths()
        for name in ("machine", "qemu_binary"):
            if not self.options.get(name):
                raise AgentError(f"flash protocol qemu needs --set {name}=...")
        binary = self.options["qemu_binary"]
        if shutil.which(binary) is None:
            raise AgentError(f"{binary} not found on PATH of this host")
        if not os.path.isfile(image):
            raise AgentError(f"image {image} not found")
        os.makedirs(os.path.dirname(os.path.abspath(self.port)), exist_ok=True)
        for path in (monitor, self.port):
            if os.path.lexists(path):
                os.unlink(path)
        command = [
            binary, "-M", self.options["machine"], "-display", "none", "-nodefaults", "-nic", "none",
            "-icount", "shift=" + str(int(self.options.get("icount_shift", "0"))),
            "-S", "-monitor", "unix:" + monitor + ",server=on,wait=off",
            "-serial", "pty", "-kernel", image,
        ]
        with open(log_file, "wb") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        with open(pid_file, "w") as fh:
            fh.write(str(process.pid))
        pty = self._wait_for_pty(process, log_file, monitor)
        tmp = self.port + ".tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(pty, tmp)
        os.replace(tmp, self.port)
        return {"pid": process.pid, "pty": pty, "port": self.port}

    @staticmethod
    def _wait_for_pty(process, log_file, monitor, timeout=10.0):
        deadline = time.monotonic() + timeout
        marker = "char device redirected to "
        while time.monotonic() < deadline:
            if process.poll() is not None:
                with open(log_file, errors="replace") as fh:
                    raise AgentError(f"QEMU exited with code {process.returncode}: {fh.read()[-500:]}")
            with open(log_file, errors="replace") as fh:
                text = fh.read()
            if marker in text and os.path.exists(monitor):
                return text.split(marker, 1)[1].split()[0]
            time.sleep(0.01)
        raise AgentError(f"QEMU did not open its serial pty within {timeout:.0f} s")

    def release(self):
        monitor = self._paths()[0]
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(monitor)
            _read_until(sock, b"(qemu) ")
            sock.sendall(b"cont\n")
            _read_until(sock, b"(qemu) ")

    def stop(self):
        _, pid_file, _ = self._paths()
        try:
            with open(pid_file) as fh:
                pid = int(fh.read().strip() or 0)
        except (OSError, ValueError):
            return
        if pid and _is_qemu(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
            while _is_qemu(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _is_qemu(pid):
                os.kill(pid, signal.SIGKILL)
        try:
            os.unlink(pid_file)
        except OSError:
            pass


def _is_qemu(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"qemu-system" in cmdline


def _read_until(sock, token):
    data = b""
    while token not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AgentError("QEMU monitor closed the connection")
        data += chunk
    return data


# --------------------------------------------------------------------------- PlatformIO (real boards)

#: how each upload protocol picks one probe out of several by serial number
PROBE_SELECT = {
    "stlink": ["-c", "adapter serial {serial}"],  # OpenOCD (ststm32's default stlink uploader)
    "cmsis-dap": ["-c", "adapter serial {serial}"],
    "jlink": ["-SelectEmuBySN", "{serial}"],
    "picotool": ["--ser", "{serial}"],
}

#: files of a PlatformIO build an upload may need next to firmware.elf
IMAGE_FILES = ("firmware.elf", "firmware.bin", "firmware.hex", "bootloader.bin", "partitions.bin")


@flasher("platformio")
class PlatformIOFlasher(Flasher):
    """``pio run -t nobuild -t upload`` in a generated project holding the built image.

    Options: board, platform, framework (default arduino), probe_serial. The
    protocol name is PlatformIO's upload_protocol; the board's serial port is the
    upload port (esptool, picotool). Not verified on hardware in this repository.
    """

    def project_ini(self):
        opts = self.options
        for name in ("board", "platform"):
            if not opts.get(name):
                raise AgentError(f"flash protocol {self.protocol} needs --set {name}=...")
        lines = [
            "; generated by the tinyfarm agent for one upload",
            "[env:farm]",
            "platform = " + opts["platform"],
            "board = " + opts["board"],
            "framework = " + opts.get("framework", "arduino"),
            "upload_protocol = " + self.protocol,
            "upload_port = " + self.port,
        ]
        serial_number = opts.get("probe_serial")
        if serial_number:
            select_flags = PROBE_SELECT.get(self.protocol)
            if select_flags is None:
                raise AgentError(f"upload protocol {self.protocol} cannot select a probe by serial number here")
            lines.append("upload_flags =")
            lines += ["    " + flag.format(serial=serial_number) for flag in select_flags]
        for value in lines:
            if "\n" in value or "\r" in value:
                raise AgentError("a flash option contains a line break")
        return "\n".join(lines) + "\n"

    def command(self, project):
        pio = self.options.get("pio", "pio")
        return [pio, "run", "-d", project, "-e", "farm", "-t", "nobuild", "-t", "upload"]

    def load(self, image):
        image_dir = os.path.dirname(os.path.abspath(image))
        project = os.path.join(image_dir, "upload-project")
        build = os.path.join(project, ".pio", "build", "farm")
        os.makedirs(build, exist_ok=True)
        for name in IMAGE_FILES:
            source = os.path.join(image_dir, name)
            if name == "firmware.elf":
                source = image
            if os.path.isfile(source):
                shutil.copy2(source, os.path.join(build, name))
        with open(os.path.join(project, "platformio.ini"), "w") as fh:
            fh.write(self.project_ini())
        command = self.command(project)
        if shutil.which(command[0]) is None:
            raise AgentError(f"{command[0]} (PlatformIO) not found on PATH of this host")
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=float(self.options.get("timeout", "300")))
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise AgentError(f"upload with {self.protocol} failed (exit {proc.returncode}):\n{tail}")
        return {"uploaded": True}


# --------------------------------------------------------------------------- the bridge


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def bridge(protocol, port, baud, options=None, stdin_fd=0, stdout_fd=1):
    """Relay between the serial port and stdin/stdout until either side closes."""
    import serial  # pyserial: the one package a bench host needs

    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0)
    except (serial.SerialException, OSError, ValueError) as exc:
        _write_all(stdout_fd, BRIDGE_ERROR + f"cannot open {port}: {exc}\n".encode())
        return 3
    board = flasher_for(protocol, port, options)
    for signum in (signal.SIGHUP, signal.SIGTERM):  # hung up or told to stop: still stop the board
        signal.signal(signum, lambda *_: sys.exit(6))
    try:
        _write_all(stdout_fd, BRIDGE_OK)
        board.release()
        port_fd = ser.fileno()
        while True:
            ready, _, _ = select.select([stdin_fd, port_fd], [], [], 5.0)
            if stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if not data:
                    return 0  # the controller closed the channel
                ser.write(data)
            if port_fd in ready:
                try:
                    data = os.read(port_fd, 65536)
                except OSError as exc:  # EIO: the other end of a pty closed
                    sys.stderr.write(f"serial port {port} went away: {exc}\n")
                    return 4
                if not data:
                    sys.stderr.write(f"serial port {port} went away (end of file)\n")
                    return 4
                _write_all(stdout_fd, data)
    except OSError as exc:  # EPIPE: the controller's end went away (connection dropped)
        sys.stderr.write(f"the controller went away: {exc}\n")
        return 5
    finally:
        ser.close()
        # The console is gone -- closed, or the SSH connection dropped. An emulated board
        # is powered off with it, so nothing keeps running on the host (a no-op for real boards).
        board.stop()


# --------------------------------------------------------------------------- command line


def _options(pairs):
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AgentError(f"--set takes KEY=VALUE, not {pair!r}")
        options[key] = value
    return options


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinyfarm-agent")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hello")
    for name in ("flash", "bridge", "stop"):
        p = sub.add_parser(name)
        p.add_argument("--protocol", required=True)
        p.add_argument("--port", required=True)
        p.add_argument("--set", action="append", default=[], dest="options", metavar="KEY=VALUE")
        if name == "flash":
            p.add_argument("--image", required=True)
        if name == "bridge":
            p.add_argument("--baud", type=int, default=115200)
    args = parser.parse_args(argv)
    try:
        if args.command == "hello":
            try:
                import serial

                pyserial = serial.VERSION
            except ImportError:
                pyserial = None
            print(json.dumps({"agent": AGENT_VERSION, "python": sys.version.split()[0], "pyserial": pyserial}))
            return 0
        options = _options(args.options)
        if args.command == "flash":
            result = flasher_for(args.protocol, args.port, options).load(args.image)
            print(json.dumps({"ok": True, **result}))
            return 0
        if args.command == "bridge":
            return bridge(args.protocol, args.port, args.baud, options)
        flasher_for(args.protocol, args.port, options).stop()
        return 0
    except (AgentError, OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"tinyfarm agent: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
