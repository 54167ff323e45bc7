"""distill.distillers."""
