"""Energy per inference: the monitor interface and the datasheet model (energy), the
capture math of measuring monitors (capture), and one module per monitor (ppk2, joulescope)."""
