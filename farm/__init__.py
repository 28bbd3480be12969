"""tinyfarm: a hardware-in-the-loop test farm controller for TinyML."""

__version__ = "0.1.0"
