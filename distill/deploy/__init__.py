"""Using a trained student: load and predict/export (model), cost (params, FLOPs, latency), share, evaluate."""
