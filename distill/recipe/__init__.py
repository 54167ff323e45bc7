"""The recipe: YAML files (files), typed configuration (config) and its validation (check)."""
