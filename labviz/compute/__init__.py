"""Layer 2, compute: calibration, confusion, projection, collapse, label quality and inversion."""
