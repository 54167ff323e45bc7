"""distill.engine."""
