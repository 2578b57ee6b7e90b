"""``python -m alloop``: the same command line as the ``alloop`` script."""

import sys

from alloop.cli import main

if __name__ == "__main__":
    sys.exit(main())
