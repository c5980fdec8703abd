"""``python -m ftpd.load``: the same as the ``ftpd-load`` console script."""

import sys

from ftpd.load.cli import main

if __name__ == "__main__":
    sys.exit(main())
