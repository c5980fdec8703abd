"""ftpd: an asyncio FTP server.

The package is split into a sans-IO protocol core (``ftpd.proto``), the IO layer
(``ftpd.server``), storage backends (``ftpd.fs``), authentication (``ftpd.auth``) and the
command line (``ftpd.cli``). Importing the package itself is cheap and has no side effects.
"""

__version__ = "0.1.0"
