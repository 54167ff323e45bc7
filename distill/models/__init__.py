"""distill.models."""
