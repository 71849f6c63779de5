"""``python -m mfsde …``: the same command line as the ``mfsde`` script (see :mod:`mfsde.cli`)."""

import sys

from mfsde.cli import main

if __name__ == "__main__":
    sys.exit(main())
