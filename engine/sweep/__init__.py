"""Parameter sweeps and dataset generation on Ray (``engine sweep sweep.toml``)."""
