"""Synthetic stand-ins written in the official layouts of the real datasets (labelled as synthetic everywhere).

Each writer is registered in :data:`distill.registry.WRITERS` under the name of the dataset it imitates
(``distill data kadid10k ROOT``, ``distill list writers``).
"""

from __future__ import annotations

from distill.data.synthetic.kadid import PSEUDO_MOS_FORMULA, pseudo_mos, write_synthetic_kadid

__all__ = ["PSEUDO_MOS_FORMULA", "pseudo_mos", "write_synthetic_kadid"]
