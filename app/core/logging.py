"""JSON logs on stdout, each line carrying the request id.

Cheap enough for one access line per request: the formatter encodes with pydantic-core and formats the
timestamp's date and time once per second, and records skip what no formatter here prints (caller frame,
thread and process names: the logging HOWTO's documented optimizations).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pydantic_core import to_json

from app.core.context import request_id_var

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message",
                                                                      "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, microseconds, ``Z``), ``level``, ``logger``, ``msg``,
    ``request_id``, the record's extra fields, and ``exc`` with the traceback. ASCII only."""

    _second = -1
    _prefix = ""

    def _ts(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1_000_000):06d}Z"

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self._ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and k[0] != "_":
                data[k] = v
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        line = to_json(data, fallback=str).decode()
        return line if line.isascii() else json.dumps(json.loads(line))  # escaped, as json.dumps does


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    logging._srcfile = None  # no caller lookup (no formatter here prints file, line or function)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("pymongo", "uvicorn.access", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
