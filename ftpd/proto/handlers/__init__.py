"""The command handlers, one module per group of commands; ``ftpd.proto.commands`` binds them.

Every handler is ``ftp_<VERB>(s, arg, path)``: ``s`` is the session's state
(``ftpd.proto.state.SessionState``), ``arg`` the argument as sent, ``path`` the argument resolved to
a virtual path when the command table says it is one (else ""). The generic check has run before
(syntax, login, availability, sequence, path, permission). A handler returns its replies, or is a
generator that yields requests for the IO layer (``ftpd.proto.requests``) and returns them at the
end; it raises ``FtpError`` for a refusal. Handler modules import nothing from ``commands`` or
``session`` (which import them), so the package has no import cycle.
"""
