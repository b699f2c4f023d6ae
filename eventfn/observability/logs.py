"""structlog set-up: JSON lines in production, a readable console on a terminal.

The hot path logs one line per handled event, so the pipeline is kept short: a level filter
compiled into the bound logger class, an ISO timestamp, and orjson rendering bytes. uvicorn's own
loggers are routed through the same renderer; its access log is off because the ingress writes a
richer line of its own.

In JSON mode every line goes through one `LineWriter`: lines logged during one turn of the event
loop leave in one `write` at the end of that turn, instead of a `write` syscall per line. The
ingress's per-event line skips structlog's per-call machinery (`HotLogger`, same JSON).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import re
import sys
import threading
from typing import IO, Any

import orjson
import structlog

from eventfn.core.clock import iso_now
from eventfn.core.config import Settings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR

# Keys whose values must never reach a log line (tokens, keys, credentials).
SECRET_KEYS = frozenset({"authorization", "api_key", "x-api-key", "token", "password", "secret"})


def add_timestamp(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict["timestamp"] = iso_now()
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


class LineWriter:
    """Log lines to a binary stream, written once per turn of the event loop.

    Hand-written because neither structlog nor logging batch writes: `QueueHandler` adds a
    thread and a copy per record, `MemoryHandler` flushes on a count rather than when the loop
    is about to wait. Inside the loop's thread a line is copied into a buffer and the first one
    of a turn schedules `flush` with `call_soon`: every line of the turn leaves in one `write`,
    at most one turn late. Any other thread, and code running without a loop, writes through at
    once. What is still buffered at exit is flushed by `atexit`.

    The buffer is a `bytearray`, not a list of lines: a line is freed as soon as it is copied,
    while keeping orjson's output objects alive until the flush cost more per line.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop that will flush _buffer
        self._thread = 0  # the thread running it
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def write(self, line: bytes) -> None:
        """Queue `line` (newline included) for the end of this turn of the loop."""
        loop = self._loop
        if (
            self._buffer
            and loop is not None
            and threading.get_ident() == self._thread
            and loop.is_running()
        ):  # a flush is scheduled in this turn (asking asyncio for the loop costs a getpid)
            with self._lock:
                self._buffer += line
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing would flush it later
            with self._lock:
                self._flush_locked()
                self._write(line)
            return
        with self._lock:
            if self._buffer and loop is self._loop:  # scheduled by this loop earlier in the turn
                self._buffer += line
                return
            # Lines left by a loop that stopped before its turn ended go first.
            self._flush_locked()
            self._buffer += line
            self._loop, self._thread = loop, threading.get_ident()
        loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):  # stdout closed or broken: the lines have nowhere to go
            # Raising would fail the flush callback, whose error report is itself a log line.
            pass


class _JsonLines:
    """structlog's logger for rendered JSON lines (bytes): every level goes to the writer."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: bytes) -> None:
        self._writer.write(message + b"\n")

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class _TextLines:
    """The stream of the stdlib handler: text lines into the same writer, in order."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8", "replace"))

    def flush(self) -> None:
        """Lines leave at the end of the loop's turn (see LineWriter)."""


# Where the JSON lines go once configure_logging chose JSON; None on the console.
_json_writer: list[LineWriter | None] = [None]


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the stdlib loggers uvicorn uses, once per process."""
    level = _LEVELS[settings.log_level]
    use_console = settings.log_format == "console" or (
        settings.log_format == "auto" and sys.stdout.isatty()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_timestamp,
        _redact,
    ]
    renderer: Any
    writer = None
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        writer = LineWriter(sys.stdout.buffer)
        lines = _JsonLines(writer)
        factory = lambda *_: lines  # noqa: E731 - structlog's factory protocol
    _json_writer[0] = writer if level <= logging.INFO else None
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _route_stdlib(level, shared, writer)


def _route_stdlib(level: int, shared: list[Any], writer: LineWriter | None) -> None:
    """Send uvicorn's (and any library's) stdlib logging through structlog's renderer."""
    use_console = writer is None
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
    stream: Any = sys.stdout if writer is None else _TextLines(writer)
    handler = logging.StreamHandler(stream)
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


class HotLogger:
    """The per-event info line of the ingress, rendered like structlog's JSON line for a third
    of the cost: no bound-logger copy of the context, no processor calls, one `orjson.dumps`.

    With console output, or a level above info, it hands the line to structlog as usual. Lines
    carry what structlog's chain would add: bound context variables, level, timestamp. The keys
    logged here are fixed by the ingress (no secrets to redact).
    """

    def __init__(self, component: str) -> None:
        self._component = component
        self._logger = get_logger(component)
        # The line starts with the bound `component`, as structlog's would: rendered once.
        self._head = b'{"component":' + orjson.dumps(component) + b","

    def info(self, event: str, **fields: Any) -> None:
        writer = _json_writer[0]
        if writer is None or "component" in fields:
            self._logger.info(event, **fields)
            return
        # `fields` is this call's own dict: completed in place, rendered after the head.
        fields["event"] = event
        if len(contextvars.copy_context()):  # an empty context has nothing bound to merge
            for key, value in structlog.contextvars.get_contextvars().items():
                fields.setdefault(key, value)  # as merge_contextvars does
        fields["level"] = "info"
        fields["timestamp"] = iso_now()
        writer.write(self._head + orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)[1:])
