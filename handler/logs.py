"""structlog set-up: JSON lines in production, a readable console on a terminal.

The hot path logs one line per handled event, so the pipeline is kept short: a level filter
compiled into the bound logger class, an ISO timestamp, and orjson writing bytes straight to
stdout. uvicorn's own loggers are routed through the same renderer; its access log is off
because the ingress writes a richer line of its own.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson
import structlog

from handler.config import Settings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR

# Keys whose values must never reach a log line (tokens, keys, credentials).
SECRET_KEYS = frozenset({"authorization", "api_key", "x-api-key", "token", "password", "secret"})


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def _timestamp(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """`TimeStamper(fmt="iso", utc=True)`'s format, with the date formatted once per second.

    structlog's TimeStamper builds a datetime per line: a quarter of the cost of a log line.
    """
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[0] = second
    event_dict["timestamp"] = f"{_second[1]}.{int((now - second) * 1e6):06d}Z"
    return event_dict


class _NoCredentialsInUrls(logging.Filter):
    """Redacts credentials in URLs of library log lines: a browser's `?token=` is a credential.

    uvicorn logs request lines and `"WebSocket /path?query"` lines with the full query string.
    """

    _PATTERN = re.compile(r"([?&](?:token|api_key|apikey|access_token)=)[^&\s\"']*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._PATTERN.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the stdlib loggers uvicorn uses, once per process."""
    level = _LEVELS[settings.log_level]
    use_console = settings.log_format == "console" or (
        settings.log_format == "auto" and sys.stdout.isatty()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _timestamp,
        _redact,
    ]
    renderer: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _route_stdlib(level, shared, use_console=use_console)


def _route_stdlib(level: int, shared: list[Any], *, use_console: bool) -> None:
    """Send uvicorn's (and any library's) stdlib logging through structlog's renderer."""
    final: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer(
            serializer=lambda d, **kw: orjson.dumps(d, **kw).decode()
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, final],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_NoCredentialsInUrls())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str) -> Any:
    """A lazy structlog logger carrying a component name (configured on first use, not import)."""
    return structlog.get_logger(component=name)
