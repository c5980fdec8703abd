"""Interoperability tests: real FTP clients against a real ftpd process (see ``support.py``)."""
