"""``KeyEnum``: an ``Enum`` for the members that key the hot state tables.

Naming a member costs more than it looks on Python 3.11: ``EnumType`` defines ``__getattr__``
(3.12 dropped it), and a metaclass with ``__getattr__`` takes every class attribute lookup off
CPython's fast path, ``Phase.CLOSED`` included, found or not: ~110-170 ns, against ~15 ns for a
module global. A login named ~50 members (~5 µs, a tenth of its Python), so the modules on the
command path bind the members they test to module-level names (``_CLOSED = Phase.CLOSED``)
and use those there.
"""

from __future__ import annotations

import enum

__all__ = ["KeyEnum"]


class KeyEnum(enum.Enum):
    """An ``Enum`` whose members hash by identity, in C. ``Enum.__hash__`` is Python code
    (``hash(self._name_)``), and the state tables look up (state, event) pairs many times per
    command (16 hashes a login). Members are singletons compared by identity, so the identity
    hash is consistent with equality."""

    __hash__ = object.__hash__
