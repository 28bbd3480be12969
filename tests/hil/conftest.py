"""The nightly HIL suite. Runs with tinyfarm's pytest plugin: ``farm nightly`` or
``pytest tests/hil --farm-devices devices.yaml``."""
