"""Synthetic stand-ins written in the official layouts of the real datasets (labelled as synthetic everywhere).

Each writer is registered in :data:`distill.registry.WRITERS` under the name of the dataset it imitates
(``distill data kadid10k ROOT``, ``distill data tid2013 ROOT``, ``distill data livec ROOT``,
``distill list writers``).
"""

from __future__ import annotations

from distill.data.synthetic.common import pseudo_mos
from distill.data.synthetic.cub import write_synthetic_cub
from distill.data.synthetic.kadid import PSEUDO_MOS_FORMULA, write_synthetic_kadid
from distill.data.synthetic.livec import write_synthetic_livec
from distill.data.synthetic.sr import write_synthetic_div2k, write_synthetic_sr_benchmark
from distill.data.synthetic.tid2013 import write_synthetic_tid2013

__all__ = [
    "PSEUDO_MOS_FORMULA",
    "pseudo_mos",
    "write_synthetic_cub",
    "write_synthetic_div2k",
    "write_synthetic_kadid",
    "write_synthetic_livec",
    "write_synthetic_sr_benchmark",
    "write_synthetic_tid2013",
]
