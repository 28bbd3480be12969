"""The nightly HIL suite. Runs with tinyfarm's pytest plugin: ``farm nightly`` or
``pytest farm/hil --farm-devices devices.yaml``."""
