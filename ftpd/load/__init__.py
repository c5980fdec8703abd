"""``ftpd-load``: the bundled load and stress tool (its own asyncio FTP client).

It imports nothing from the server side (``ftpd.proto``, ``ftpd.server``, ``ftpd.fs``,
``ftpd.auth``), so it measures any FTP server the same way.
"""
