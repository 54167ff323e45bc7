"""distill.data."""
