"""Where ftpd intentionally differs from pyftpdlib, and why.

Placeholder; filled in below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EQUIVALENT_CODES: dict[int, tuple[int, str]] = {
    125: (150, "RFC 959 §5.4: 125 and 150 are both positive preliminary replies."),
}


@dataclass(frozen=True)
class Allow:
    reason: str
    code: int | Mapping[str, int] | None = None
    detail: Any = None
    tree: Mapping[bytes, Any] | None = None


ALLOW: dict[str, dict[str, Allow]] = {}
