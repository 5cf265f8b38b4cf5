"""The lines the feed pipeline logs (``obview.feed``), captured in a test."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from obview.feed import pipeline


@contextlib.contextmanager
def pipeline_log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: lines.append(rec.getMessage())  # type: ignore[method-assign]
    logger = pipeline.log
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel("INFO")
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
