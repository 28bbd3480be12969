"""Energy per inference: the monitor interface and registry (monitor), the datasheet model
(datasheet), the capture math of measuring monitors (capture), one module per measuring
monitor (ppk2, joulescope), and the lookup by the inventory's power kind (energy)."""
