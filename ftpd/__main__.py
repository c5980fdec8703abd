"""``python -m ftpd``: the same as the ``ftpd`` console script."""

from ftpd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
