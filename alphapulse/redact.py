"""Secrets out of everything printed or logged: the credentials and path of URLs.

Secrets held in the configuration (fields declared with ``metadata={"secret": True}``, such as
the dashboard's session-signing key) print as :data:`MASK`. RPC providers put API keys in a URL's user info (``wss://user:key@host``) or path
(``wss://host/v3/KEY``); :func:`mask_urls` keeps a URL's scheme, host and port and
replaces the rest with ``***``. :class:`RedactFilter` applies it to every record
that reaches a handler, third-party loggers (web3, websockets) included, since
what they print is out of our hands.
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


class RedactFilter(logging.Filter):
    """Masks URLs (:func:`mask_urls`) in a record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:                       # a record whose args do not fit its format
            msg = str(record.msg)
        masked = mask_urls(msg)
        if masked != msg or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_urls(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_urls(record.stack_info)
        return True


def install(handler: logging.Handler) -> logging.Handler:
    """Add a :class:`RedactFilter` to ``handler`` (once); returns it."""
    if not any(isinstance(f, RedactFilter) for f in handler.filters):
        handler.addFilter(RedactFilter())
    return handler
