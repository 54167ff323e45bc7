"""distill.models.iqa."""
