"""Many Bokeh client sessions in one helper process (used by test_sessions.py).

``python -m tests.dashboard.session_probe URL N``: opens N sessions, prints
``ready`` once every document is pulled, then reads one line from stdin (the
signal id every session must end up showing), waits until all do (or 20 s),
and prints one JSON line: per session the pushes it received
``[[arrival monotonic s, push number, server ns], ...]`` and the last
``signal_id`` of its table. Each session acknowledges every push as the
page does (``push_ack.tags``). A separate process, so that the clients' own
decoding does not share a GIL with the producer of the test.

Bokeh's Python client handles each incoming message by awaiting the handler of
the next one (``_handle_messages`` -> ``_next`` -> ``state.run`` ->
``_handle_messages``), so its coroutine chain, and the Python stack that
resumes it, grows by a few frames per message and is never unwound while the
session lives: past about 300 messages the default recursion limit of 1000 is
hit and the session dies with ``RecursionError``. Measured here: ~6 frames per
push. The probe therefore raises the recursion limit and gives its threads a
stack large enough for it. (The page's BokehJS client has no such chain.)

The dashboard refuses session ids it did not sign: the probe signs its own with the dashboard's
key, given as Bokeh reads it, in the environment (BOKEH_SECRET_KEY, BOKEH_SIGN_SESSIONS=true).
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time

from bokeh.client import pull_session

# room for ~20k messages per session (see the module doc); both limits are per process
sys.setrecursionlimit(200_000)
threading.stack_size(512 * 1024 * 1024)      # virtual: only the pages used are committed


class Probe(threading.Thread):
    """One Bokeh client session; records every push (``push_clock.tags``) it receives."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ready = threading.Event()
        self.pushes: list[tuple[float, int, int]] = []
        self.session = None
        self.table = None
        self.error: str | None = None
        self.closing = False

    def run(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            self.session = pull_session(url=self.url)
            clock = self.session.document.select_one({"name": "push_clock"})
            self.ack = self.session.document.select_one({"name": "push_ack"})
            clock.on_change("tags", self._on_tags)
            self.table = self.session.document.select_one({"name": "opportunities"})
        except Exception as e:  # reported to the test
            self.error = repr(e)
            self.ready.set()
            return
        self.ready.set()
        try:
            self.session._connection.loop_until_closed()   # bokeh 3.9: no public wrapper
        except Exception as e:
            self.error = repr(e)
        if not self.closing and self.error is None:
            self.error = "the session's loop ended before the probe closed it"

    def _on_tags(self, attr, old, new) -> None:
        if new:
            self.pushes.append((time.monotonic(), int(new[0]), int(new[1])))
            self.ack.tags = [int(new[0])]       # applied: what the page's JavaScript does

    def last_signal_id(self) -> str | None:
        ids = list(self.table.data.get("signal_id", [])) if self.table is not None else []
        return ids[-1] if ids else None

    def close(self) -> None:
        self.closing = True
        if self.session is not None and self.is_alive():
            self.session._connection._loop.add_callback(self.session.close)


class CallbackErrors(logging.Handler):
    """An exception in a client's message chain ends its message handling; Tornado only
    logs it (``tornado.application``): charge it to the session whose thread logged it."""

    def __init__(self, probes: list[Probe]) -> None:
        super().__init__(logging.ERROR)
        self.probes = probes

    def emit(self, record: logging.LogRecord) -> None:
        for p in self.probes:
            if p.ident == record.thread and p.error is None and not p.closing:
                exc = record.exc_info[1] if record.exc_info else None
                p.error = repr(exc) if exc is not None else record.getMessage()


def main() -> int:
    url, n = sys.argv[1], int(sys.argv[2])
    probes = [Probe(url) for _ in range(n)]
    logging.getLogger("tornado.application").addHandler(CallbackErrors(probes))
    for p in probes:
        p.start()
    for p in probes:
        p.ready.wait(120)
    errors = [p.error for p in probes if p.error or not p.ready.is_set()]
    print("ready" if not errors else f"error {errors}", flush=True)
    target = sys.stdin.readline().strip()
    deadline = time.monotonic() + 20
    while any(p.last_signal_id() != target for p in probes) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps([{"pushes": list(p.pushes), "last": p.last_signal_id(), "error": p.error}
                      for p in probes]), flush=True)
    for p in probes:
        p.close()
    deadline = time.monotonic() + 10
    for p in probes:
        p.join(max(0.0, deadline - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
