"""``KeyEnum``: an ``Enum`` for the members that key the hot state tables."""

from __future__ import annotations

import enum

__all__ = ["KeyEnum"]


class KeyEnum(enum.Enum):
    """An ``Enum`` whose members hash by identity, in C. ``Enum.__hash__`` is Python code
    (``hash(self._name_)``), and the state tables look up (state, event) pairs many times per
    command (16 hashes a login). Members are singletons compared by identity, so the identity
    hash is consistent with equality."""

    __hash__ = object.__hash__
