"""distill.metrics."""
