"""distill.losses."""
