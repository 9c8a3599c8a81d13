"""Secrets out of everything printed or logged: the credentials and path of URLs.

Secrets held in the configuration (fields declared with ``metadata={"secret": True}``, such as
the dashboard's session-signing key) print as :data:`MASK`. RPC providers put API keys in a URL's user info (``wss://user:key@host``) or path
(``wss://host/v3/KEY``); :func:`mask_urls` keeps a URL's scheme, host and port and
replaces the rest with ``***``. The same secrets travel in a request without a scheme: HTTP
clients' debug logs print the request line (``GET /v3/KEY HTTP/1.1``, urllib3's
``"POST /?apikey=KEY HTTP/1.1"``) and the headers (``Authorization: Basic <user:key in
base64>``), and urllib3's connection errors name the path and query alone (``Max retries
exceeded with url: /v3/KEY``); :func:`redact` also masks these (``/***``) and the value of an
authentication header. :class:`RedactFilter` applies :func:`redact` to every record that
reaches a handler, third-party loggers (web3, websockets, urllib3) included, since what they
print is out of our hands.
"""
from __future__ import annotations

import logging
import re

MASK = "***"        # what a secret reads wherever it would be printed

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/@'\"<>]*@)?([^\s/?#'\"<>@]+)([/?#][^\s'\"<>]*)?")
_TRAILING = ".,;:)]}"


def _mask(m: re.Match) -> str:
    scheme, userinfo, hostport, rest = m.group(1), m.group(2), m.group(3), m.group(4) or ""
    tail = ""
    while rest and rest[-1] in _TRAILING:
        tail = rest[-1] + tail
        rest = rest[:-1]
    out = scheme + ("***@" if userinfo else "") + hostport
    if rest and rest != "/":
        out += "/***"
    else:
        out += rest
    return out + tail


def mask_urls(text: str) -> str:
    """``text`` with every URL's user info and path/query replaced by ``***`` (host, port kept)."""
    if "://" not in text:
        return text
    return _URL.sub(_mask, text)


_REQUEST_LINE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE) (\S+)( HTTP/\d)")
_AUTH_HEADER = re.compile(r"(?im)\b((?:proxy-)?authorization|x-api-key|api-key|cookie|set-cookie)(['\"]?\s*+[:=]\s*+['\"]?)"
                          r"(?!\*\*\*)[^\r\n'\"]+")


_URL_FIELD = re.compile(r"\b(with url: )(/[^\s'\"]*)")     # urllib3's MaxRetryError: "... with url: /v3/KEY"


def _mask_target(m: re.Match) -> str:
    target = m.group(2)
    if "://" in target:
        target = mask_urls(target)
    elif target not in ("/", "*"):
        target = "/" + MASK
    return m.group(1) + " " + target + m.group(3)


def redact(text: str) -> str:
    """``text`` with URLs masked (:func:`mask_urls`), a request line's target masked
    (``GET /*** HTTP/1.1``; ``/`` stays), the path urllib3's errors name (``with url: /***``) and
    authentication headers' values masked."""
    text = mask_urls(text)
    if "HTTP/" in text:
        text = _REQUEST_LINE.sub(_mask_target, text)
    if "with url: " in text:
        text = _URL_FIELD.sub(lambda m: m.group(1) + ("/" if m.group(2) == "/" else "/" + MASK), text)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


class RedactFilter(logging.Filter):
    """Masks secrets (:func:`redact`: URLs, request targets, authentication headers) in a
    record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:                       # a record whose args do not fit its format
            msg = str(record.msg)
        masked = redact(msg)
        if masked != msg or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(handler: logging.Handler) -> logging.Handler:
    """Add a :class:`RedactFilter` to ``handler`` (once); returns it."""
    if not any(isinstance(f, RedactFilter) for f in handler.filters):
        handler.addFilter(RedactFilter())
    return handler
