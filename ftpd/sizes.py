"""Byte sizes and rates as operators write them: ``1048576``, ``"512K"``, ``"2M"``, ``"1G"``.

Shared by the config (``max_download_rate``, ``user_quota_bytes``...) and the users file, so that a
value means the same in both. Suffixes are powers of 1024 (``K``, ``M``, ``G``; ``KB``/``KiB``
spellings accepted), as vsftpd's and pure-ftpd's rate options are read by most operators.
"""

from __future__ import annotations

import re

__all__ = ["parse_size"]

_SIZE_RE = re.compile(r"\s*([0-9]+)\s*([KMGkmg]?)(?:i?[Bb])?\s*")
_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(value: object) -> int:
    """An integer >= 0, or a string like ``"512K"``, ``"2M"``, ``"1G"`` (powers of 1024).

    ValueError for anything else (booleans, negatives, other suffixes)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(value)
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match:
            return int(match.group(1)) * _SUFFIX[match.group(2).lower()]
    raise ValueError(value)
