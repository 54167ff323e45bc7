"""``python -m distill`` (and ``torchrun --nproc_per_node=N -m distill run RECIPE``) runs the command line."""

import sys

from distill.cli import main

if __name__ == "__main__":
    sys.exit(main())
