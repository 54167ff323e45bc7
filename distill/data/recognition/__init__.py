"""Recognition under degradation: the CUB-200-2011 reader (single and paired views), CQD's degradations and the
synthetic CUB writer."""

from __future__ import annotations

from distill.data.recognition.cub import CUB200, CUB200Paired
from distill.data.recognition.synthetic import write_synthetic_cub

__all__ = ["CUB200", "CUB200Paired", "write_synthetic_cub"]
