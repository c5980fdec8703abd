"""The package's version, in a module of its own: ``ftpd/__init__.py`` names the whole public
API (for type checkers), so the modules that need only the version import it from here."""

__version__ = "0.1.0"
