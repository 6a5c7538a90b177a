"""Structured logging: request id, user id and test-mode flag on every line; JSON in production."""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import time
from json.encoder import encode_basestring_ascii

from flask import Flask, has_request_context

from app.core import current, testmode
from app.core.flask_app import add_fixed_headers


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            ctx_g = current.g()
            record.request_id, record.user_id = ctx_g.get("request_id", "-"), ctx_g.get("log_user_id", "-")
        else:
            record.request_id = record.user_id = "-"
        record.test_mode = testmode.active()
        return True


class JsonFormatter(logging.Formatter):
    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt=None) -> str:
        """logging's default time ("2026-12-06 23:12:44,363"), its strftime made once a second."""
        if datefmt is not None or self.datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if self._second[0] != second:
            self._second = (second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created)))
        return f"{self._second[1]},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        """The line json.dumps() makes of {time, level, logger, message, request_id, user_id,
        test_mode[, exc]}, written field by field: json.dumps() set its encoder up anew for every
        line, ~30,000 instructions of the ~70,000 an access line cost (callgrind)."""
        line = (f'{{"time": {_json(self.formatTime(record))}, "level": {_json(record.levelname)}, '
                f'"logger": {_json(record.name)}, "message": {_json(record.getMessage())}, '
                f'"request_id": {_json(getattr(record, "request_id", "-"))}, '
                f'"user_id": {_json(getattr(record, "user_id", "-"))}, '
                f'"test_mode": {_json(getattr(record, "test_mode", False))}')
        if record.exc_info:
            line += f', "exc": {_json(self.formatException(record.exc_info))}'
        return line + "}"


def _json(value) -> str:
    """One value as json.dumps() writes it (ASCII, escaped)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value)


# A caller's X-Request-Id is kept (to trace a request across services) only when it cannot
# forge or garble a log line: letters, digits and . _ : - only, at most 64 characters.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# License keys never reach a log line, whoever logs it (the dev server's request line, a proxy
# line relayed by gunicorn, the app): redacted when the record is made, before any handler.
_LICENSE_SECRETS = re.compile(r"(?i)(license_key=)[^&\s\"']+|\b(PERM)-[A-Z0-9]{4}(?:-[A-Z0-9]{4}){3}\b")


def _redact(match: re.Match) -> str:
    return f"{match.group(1)}[redacted]" if match.group(1) else f"{match.group(2)}-[redacted]"


def redacted(message: str) -> str:
    lowered = message.lower()  # the search only where a key could be: ~15% of a line's cost
    if "perm-" not in lowered and "license_key=" not in lowered:
        return message
    return _LICENSE_SECRETS.sub(_redact, message)


def _redacting_factory(make):
    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as it would
            return record
        clean = redacted(message)
        if clean is not message:
            record.msg, record.args = clean, None
        return record

    factory.redacts_license_keys = True
    return factory


def redact_license_keys() -> None:
    make = logging.getLogRecordFactory()
    if not getattr(make, "redacts_license_keys", False):
        logging.setLogRecordFactory(_redacting_factory(make))


_STARTED = time.time()
_ids = {"prefix": "", "counter": itertools.count()}


def _new_id_prefix() -> None:
    _ids.update(prefix=secrets.token_hex(6), counter=itertools.count())


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    """req_ + 20 hex: a random prefix per process and a counter (no system call per request, as
    uuid4 or os.getpid() make; unique across forked workers too: the prefix is drawn again in
    the child of every fork)."""
    return f"req_{_ids['prefix']}{next(_ids['counter']) & 0xFFFFFFFF:08x}"


def configure(app: Flask) -> None:
    # No handler here prints the caller's file and line, the thread or the process: skip
    # computing them (a frame walk and lookups) for every line, the access line of every request
    # included (the logging module's documented optimisation).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    redact_license_keys()
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s user=%(user_id)s test=%(test_mode)s] %(message)s"))
    root = logging.getLogger("app")
    if not any(isinstance(h, logging.StreamHandler) and any(isinstance(f, ContextFilter) for f in h.filters)
               for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)

    access = logging.getLogger("app.access")

    @app.before_request
    def _request_id():
        sent = current.request().headers.get("X-Request-Id", "")
        ctx_g = current.g()
        ctx_g.request_id = sent if SAFE_REQUEST_ID.fullmatch(sent) else new_request_id()
        ctx_g.request_started = time.perf_counter()

    @app.after_request
    def _echo_request_id(response):
        req, ctx_g = current.request(), current.g()
        # no answer sets it; an id the client sent is SAFE_REQUEST_ID's: sent as it is (core/flask_app.py)
        add_fixed_headers(response, (("X-Request-Id", ctx_g.get("request_id", "")),))
        if ctx_g.get("log_user_id") is None and ctx_g.get("api_user") is not None:
            ctx_g.log_user_id = ctx_g.api_user.id
        elapsed = (time.perf_counter() - ctx_g.get("request_started", time.perf_counter())) * 1000
        # The path only: query strings and bodies may carry secrets and never reach the log.
        log_access(access, f"{req.method} {req.path} {response.status_code} {elapsed:.1f}ms")
        return response


class _AccessRecord(logging.LogRecord):
    """A LogRecord made without LogRecord.__init__'s work (caller's path split into file and
    module, thread, process, relative time; then the record factory): the access line, one per
    request, paid ~100,000 instructions for logging's machinery (callgrind), more than many a
    whole request's own work. The attributes a formatter may read are all set."""

    def __init__(self, name: str, message: str) -> None:  # noqa: super().__init__ skipped on purpose
        now = time.time_ns()
        self.name, self.msg, self.args = name, message, None
        self.levelname, self.levelno = "INFO", logging.INFO
        self.pathname = self.filename = self.module = "access"
        self.funcName, self.lineno = "log_access", 0
        self.exc_info = self.exc_text = self.stack_info = None
        self.created = now / 1e9
        self.msecs = (now % 1_000_000_000) // 1_000_000 + 0.0
        self.relativeCreated = (self.created - _STARTED) * 1000
        self.thread = self.threadName = self.processName = self.process = self.taskName = None


def log_access(logger: logging.Logger, message: str) -> None:
    """logger.info(message) through the logger's handlers, as Logger.handle() would (level, disabled,
    logger filters), with the licence-key redaction of the record factory."""
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return
    record = _AccessRecord(logger.name, redacted(message))
    if logger.filters and not logger.filter(record):
        return
    logger.callHandlers(record)
