"""distill.data.synthetic."""
