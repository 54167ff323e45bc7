"""The run folder: its file names and results (folder), checkpoints, safe output paths, values read back."""
