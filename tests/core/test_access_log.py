"""The access line: one per request, written without logging's record machinery (log_access) but
read by handlers exactly as a logger.info() line, redacted and filtered the same way."""
from __future__ import annotations

import io
import json
import logging

from app.core import logging as app_logging


def _handler(json_format: bool) -> logging.Handler:
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(app_logging.ContextFilter())
    handler.setFormatter(app_logging.JsonFormatter() if json_format else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s user=%(user_id)s test=%(test_mode)s] %(message)s"))
    return handler


def _lines(logger, handler, write) -> list[str]:
    logger.addHandler(handler)
    try:
        write()
    finally:
        logger.removeHandler(handler)
    return handler.stream.getvalue().splitlines()


def test_an_access_line_reads_as_a_logger_info_line(app):
    logger = logging.getLogger("app.access.test")
    for json_format in (True, False):
        with app.test_request_context("/api/v1/credits/balance"):
            from flask import g

            g.request_id, g.log_user_id = "req_1", 42
            fast = _lines(logger, _handler(json_format), lambda: app_logging.log_access(logger, "GET /x 200 1.5ms"))
            slow = _lines(logger, _handler(json_format), lambda: logger.info("%s %s %s %.1fms", "GET", "/x", 200, 1.5))
        if json_format:
            fast_line, slow_line = json.loads(fast[0]), json.loads(slow[0])
            assert fast_line.pop("time")[:16] == slow_line.pop("time")[:16]
            assert fast_line == slow_line == {"level": "INFO", "logger": "app.access.test", "message": "GET /x 200 1.5ms",
                                              "request_id": "req_1", "user_id": 42, "test_mode": False}
        else:
            assert fast[0].split(" ", 2)[2] == slow[0].split(" ", 2)[2]


def test_an_access_line_is_redacted_and_obeys_the_loggers_level_and_filters(app, caplog):
    logger = logging.getLogger("app.access.test2")
    with app.test_request_context("/"):
        caplog.set_level(logging.INFO, logger=logger.name)
        app_logging.log_access(logger, "GET /activate?license_key=PERM-ABCD-EFGH-JKLM-NPQR 200 1.0ms")
        assert [r.getMessage() for r in caplog.records] == ["GET /activate?license_key=[redacted] 200 1.0ms"]
        caplog.clear()
        logger.addFilter(lambda record: False)
        app_logging.log_access(logger, "GET / 200 1.0ms")
        logger.filters.clear()
        logger.disabled = True
        app_logging.log_access(logger, "GET / 200 1.0ms")
        logger.disabled = False
        logger.setLevel(logging.WARNING)
        app_logging.log_access(logger, "GET / 200 1.0ms")
        logger.setLevel(logging.NOTSET)
        assert caplog.records == []


def test_a_json_line_is_the_one_json_dumps_makes_of_its_fields():
    """JsonFormatter writes the line field by field: the same text json.dumps() made of the dict."""
    formatter = app_logging.JsonFormatter()
    try:
        raise ValueError('bad "value"\nsecond line')
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    cases = [("GET /x 200 1.5ms", "req_1", 42, False, None),
             ('a "quoted" \\ back\\slash, tab\t, newline\n, control \x01, é, 日本, emoji \U0001F600', "-", "-", True, None),
             ("%s and %d", "req_2", None, False, None),  # no args: the message is the text as is
             ("failed", "req_3", 7, True, exc_info),
             ("odd values", 3.5, [1, "x"], 1, None)]
    for message, request_id, user_id, test_mode, exc in cases:
        record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, message, None, exc)
        record.request_id, record.user_id, record.test_mode = request_id, user_id, test_mode
        expected = {"time": formatter.formatTime(record), "level": "WARNING", "logger": "app.test",
                    "message": record.getMessage(), "request_id": request_id, "user_id": user_id,
                    "test_mode": test_mode}
        if exc:
            expected["exc"] = formatter.formatException(exc)
        assert formatter.format(record) == json.dumps(expected)
    bare = logging.LogRecord("app.test", logging.INFO, __file__, 1, "no context", None, None)
    assert json.loads(formatter.format(bare))["request_id"] == "-"
