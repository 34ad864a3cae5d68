"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

_STANDARD: Final = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """`fields` go into every line (a worker of `serve --workers N` says which it is)."""

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **self._fields,
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class OncePerInterval(logging.Filter):
    """Let each distinct message through at most once per ``seconds``.

    While a topic is missing, aiokafka logs "Topic ... not found in cluster metadata" at
    ERROR on every metadata refresh (ten times a second).
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._seconds = seconds
        self._clock = clock
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        now = self._clock()
        last = self._last.get(message)
        if last is not None and now - last < self._seconds:
            return False
        if len(self._last) >= 1024:  # bounded: a flood of distinct messages cannot grow it
            self._last.clear()
        self._last[message] = now
        return True


def configure(level: str, fields: Mapping[str, str] | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every failed connection attempt at ERROR; our retry line says it once.
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("aiokafka.conn").setLevel(logging.CRITICAL)
    cluster = logging.getLogger("aiokafka.cluster")
    for old in [f for f in cluster.filters if isinstance(f, OncePerInterval)]:
        cluster.removeFilter(old)
    cluster.addFilter(OncePerInterval(10.0))
