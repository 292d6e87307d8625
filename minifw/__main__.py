"""``python -m minifw``: the ``minifw`` command (see :mod:`minifw.cli`)."""

import sys

from minifw.cli import main

if __name__ == "__main__":
    sys.exit(main())
