"""Super-resolution data: DIV2K and the Set5/Set14/B100/Urban100 benchmark readers and their synthetic writers."""

from __future__ import annotations

from distill.data.sr.dataset import DIV2K, SRBenchmark, SRDataset
from distill.data.sr.synthetic import write_synthetic_div2k, write_synthetic_sr_benchmark

__all__ = ["DIV2K", "SRBenchmark", "SRDataset", "write_synthetic_div2k", "write_synthetic_sr_benchmark"]
