"""Experiments over many runs: repeated seeds and sweeps (local or SLURM launchers)."""
