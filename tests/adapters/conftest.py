"""Adapter test helpers: run the real adapter against a real anvil node in a thread."""
import threading
import time
from collections import Counter

import pytest

from alphapulse.protocol import codec


class AdapterRun:
    """``run_adapter`` in a background thread; frames collected through the sink."""

    def __init__(self, config):
        from alphapulse.adapters.evm.data import run_adapter_async
        import asyncio
        self.config = config
        self.frames: list[bytes] = []
        self.sink_calls = 0
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.client = None
        self.error = None
        ready = threading.Event()

        def sink(frames):
            with self._lock:
                self.frames.extend(frames)
                self.sink_calls += 1

        def on_client(c):
            self.client = c
            ready.set()

        def main():
            try:
                asyncio.run(run_adapter_async(config, sink, self.stop_event, client_ready=on_client))
            except BaseException as e:  # surfaced by stop()
                self.error = e
                ready.set()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    @property
    def counters(self) -> Counter:
        return self.client.counters

    def records(self):
        with self._lock:
            frames = list(self.frames)
        return [t for f in frames for t in codec.parse_frame(f).tlvs]

    def wait_connected(self, n=1, timeout=15.0):
        self.wait_until(lambda: self.client.connections >= n and self.client._rpc_ready.is_set(), timeout,
                        f"connection {n}")

    def wait_until(self, pred, timeout=20.0, what="condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.error is not None:
                raise self.error
            if pred():
                return
            time.sleep(0.02)
        c = self.client
        raise AssertionError(f"timed out waiting for {what}; counters {dict(c.counters)}; completed {c.completed_block} "
                             f"head {c._head} due {sorted(c._due)} pending {list(c._pending)} barred {len(c._barred)}")

    def wait_head(self, block, timeout=20.0):
        self.wait_until(lambda: self.client.completed_block >= block and not self.client._pending
                        and not self.client._discovering and not self.client._due, timeout, f"head {block}")

    def wait_block_end(self, block, timeout=20.0, block_hash=None):
        """Until the BlockEnd of ``block`` has been published (with ``block_hash``: the BlockEnd of
        that version of the block, e.g. a reorganised block's replacement)."""
        def ended():
            h = self.client._ended.get(block)
            return h is not None and (block_hash is None or h == block_hash) and not self.client.publisher.pending
        self.wait_until(ended, timeout, f"BlockEnd {block}")

    def stop(self):
        self.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "adapter did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def adapter_run():
    runs = []

    def start(config):
        r = AdapterRun(config)
        runs.append(r)
        return r

    yield start
    for r in runs:
        if r.thread.is_alive():
            r.stop_event.set()
            r.thread.join(15)


@pytest.fixture
def fresh_chain(anvil_factory):
    """(node, market) on a node of its own: historical state queries (getReserves at block N)
    are reliable only on a node that has not been evm_revert-ed (the session node has)."""
    from alphapulse.chain.deploy import deploy_market
    node = anvil_factory()
    return node, deploy_market(node.http_url)
