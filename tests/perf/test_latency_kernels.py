"""perf.latency_kernels.publish_stamped: the strategy bench's market frames carry their arrival."""
from __future__ import annotations

import os
import time

import numpy as np

from alphapulse.jit.frames import OFF_TIMESTAMP as off
from alphapulse.protocol import codec as C
from alphapulse.ring import Ring
from alphapulse.ring.sequencer import WAKE
from perf.latency_kernels import publish_stamped


def test_the_rings_copy_carries_the_arrival_stamp_and_the_frame_is_intact():
    frame = np.frombuffer(C.build_frame(1, 4, 7, [C.GasPrice(base_fee_wei=3, priority_fee_wei=1, block_number=9,
                                                             chain_id=137)], checksum=False), np.uint8).copy()
    before = frame.copy()
    with Ring.create(f"t_stamped_{os.getpid()}", 1 << 14, "lossless") as ring:
        cons = ring.consumer("r", wait="spin")
        prod = ring.producer()
        got = []
        for _ in range(3):
            t0 = time.time_ns()
            r, ts = publish_stamped(*prod.kernel_state(), frame)
            t1 = time.time_ns()
            assert 0 < r < WAKE and t0 <= ts <= t1
            views = cons.poll(timeout=1.0)
            got += [(bytes(v), ts) for v in views]
            cons.release()
        prod.close()
        cons.close()
    assert np.array_equal(frame, before)              # the caller's frame is not written
    assert len(got) == 3
    for data, ts in got:
        assert int.from_bytes(data[off:off + 8], "little") == ts
        assert data[:off] == before.tobytes()[:off] and data[off + 8:] == before.tobytes()[off + 8:]
    assert len({ts for _, ts in got}) == 3
