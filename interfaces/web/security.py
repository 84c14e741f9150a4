"""What keeps the reply portal safe on the internet: response headers, CSRF tokens, the limit on
link guesses, and the log filter that keeps link tokens out of every log.

A link token is a password: whoever holds one sees the ministry's page until it expires. So it is
exchanged for a session at once (the address bar then shows /m/, never the token), and the access
log, every other log record and every error page show /r/*** instead of it.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: every response; pages add Cache-Control: no-store (what a ministry sees stays out of shared caches)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

_TOKEN_PATH = re.compile(r"/([rc])/[^/\s?#\"']+")


def mask_tokens(text: str) -> str:
    """`/r/<token>` and `/c/<token>` as `/r/***`, `/c/***` (the pages /c/ and /m/ stay as they are)."""
    return _TOKEN_PATH.sub(r"/\1/***", text)


class MaskTokens(logging.Filter):
    """A log filter that masks link tokens in a record's message and arguments (uvicorn's access log
    passes the path as an argument). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask_tokens(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


#: the loggers a request's path can reach; a logger's filter sees the records logged at it
MASKED_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "fastapi", "starlette", "followup", "")


def install_log_masking(loggers: Iterable[str] = MASKED_LOGGERS) -> None:
    """Put the filter on those loggers and on every handler of the root logger (records propagated
    from any other logger pass a handler, not the logger's own filters). Idempotent."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskTokens) for f in logger.filters):
            logger.addFilter(MaskTokens())
        for handler in logger.handlers:
            if not any(isinstance(f, MaskTokens) for f in handler.filters):
                handler.addFilter(MaskTokens())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with the token filter on its handlers (`followup web`)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG}
    config["filters"] = {"mask_tokens": {"()": MaskTokens}}
    config["handlers"] = {name: {**handler, "filters": ["mask_tokens"]} for name, handler in LOGGING_CONFIG["handlers"].items()}
    return config


class SecurityHeaders:
    """Pure ASGI middleware (streams pass through untouched): the security headers on every
    response, `Cache-Control: no-store` on all but the stylesheet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["Cache-Control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: object, given: object) -> bool:
    """The form's token equals the session's (constant time); a missing one never does."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class FailureLimiter:
    """At most `limit` failed link checks per client address within `window` seconds; beyond it
    every check from that address is refused (429) until old failures age out.

    In the process's memory: each app process counts its own (the reverse proxy may limit too).
    At most `max_clients` addresses are remembered, the oldest forgotten first.
    """

    def __init__(self, limit: int = 30, window: float = 600, max_clients: int = 10_000) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= self.limit

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            failures = self._recent(client, now)
            if client not in self._failures:
                if len(self._failures) >= self.max_clients:
                    del self._failures[next(iter(self._failures))]
                self._failures[client] = failures
            failures.append(now)
