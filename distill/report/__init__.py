"""Reports of finished runs: printed tables, the per-sample report data and the HTML page."""
