"""Logging set-up: one line per event to stderr, as text (or JSON, ``log_format``)."""

from __future__ import annotations

import logging
import sys

from ..config import Config

__all__ = ["setup_logging"]


def setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
