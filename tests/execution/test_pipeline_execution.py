"""The execution component in the real pipeline (local chain, real processes): signals of the
live run are checked by real contract code and reported on the execution ring and /metrics."""
from __future__ import annotations

import time

from alphapulse.protocol import codec
from alphapulse.protocol.layout import ExecutionStatus, Venue

from tests.apps.pipeline_helpers import PipelineProcess


def _ready(p):
    return p.wait_for(lambda: (lambda h: h if h and h["ready"] else None)(p.health()), 90, "ready")


def test_live_local_chain_signals_are_checked_and_confirmed():
    from alphapulse.chain.deploy import Market
    from alphapulse.ring import Ring
    p = PipelineProcess("--source", "local-chain", dashboard=False, env={"ALPHAPULSE__SOURCE__SIMULATE": "false"})
    try:
        h = _ready(p)
        assert "execution" in h["components"]
        p.wait_for(lambda: p.metric("alphapulse_rpc_connected", "source") == 1, 60, "adapter connected")
        mk = Market.from_dict(h["local_chain"]["http_url"], h["local_chain"]["market"])
        sig_ring = Ring.attach(h["rings"]["signal"], timeout=5)
        ex_ring = Ring.attach(h["rings"]["execution"], timeout=5)
        sigs_c, ex_c = sig_ring.consumer("test-signals"), ex_ring.consumer("test-reports")
        try:
            for pool in mk.pools_for("WMATIC", "USDC"):      # first sight: the adapter discovers them
                mk.move_price(pool, 1.0005)
            p.wait_for(lambda: p.metric("alphapulse_pools", "strategy") >= 2, 30, "pools known")
            mk.move_price(mk.v2_pool("WMATIC", "USDC", Venue.QUICKSWAP), 1.015)   # opens cycles
            signals, reports = {}, {}
            deadline = time.monotonic() + 30
            last_new = time.monotonic()
            # until every signal is reported and none came for 1.5 s (the swap's last block is in)
            while time.monotonic() < deadline and not (signals and set(signals) <= set(reports)
                                                        and time.monotonic() - last_new > 1.5):
                for f in sigs_c.frames(timeout=0.1):
                    s = codec.parse_frame(f).tlvs[0]
                    signals[s.signal_id] = s
                    last_new = time.monotonic()
                for f in ex_c.frames(timeout=0.1):
                    r = codec.parse_frame(f).tlvs[0]
                    reports[r.signal_id] = r
            assert signals, "no signal\n" + p.output()[-3000:]
            checked = [i for i in signals if i in reports]
            # nothing moved after the last swap: each cycle's last signal of the newest block (priced
            # on the block's final state; a frame-by-frame strategy may also price states between
            # two events of the block, which the check rightly reports as changed) is confirmed
            newest = max(s.block_number for s in signals.values())
            last_of_cycle: dict = {}
            for i in sorted(checked):
                if signals[i].block_number == newest:
                    last_of_cycle[bytes(b"".join(signals[i].pools[:signals[i].hops]))] = i
            fresh = sorted(last_of_cycle.values())
            assert fresh, (signals.keys(), reports.keys())
            for i in fresh:
                r = reports[i]
                assert r.status == ExecutionStatus.CONFIRMED, (r.amount_out_checked, signals[i])
                assert r.amount_out_checked == signals[i].amount_out and r.checked_block >= newest
            assert p.metric("alphapulse_confirmed_total", "execution") >= len(fresh)
            assert p.metric("alphapulse_latency_seconds_count", "execution") >= len(checked)
        finally:
            sigs_c.close()
            ex_c.close()
            sig_ring.close()
            ex_ring.close()
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert p.segments() == []


def test_send_mode_on_the_local_chain_includes_transactions_and_never_shows_the_key():
    from alphapulse.chain.anvil import DEV_PRIVATE_KEYS
    from alphapulse.chain.deploy import Market
    from alphapulse.ring import Ring
    key = DEV_PRIVATE_KEYS[8]
    p = PipelineProcess("--source", "local-chain", dashboard=False,
                        env={"ALPHAPULSE__SOURCE__SIMULATE": "false", "ALPHAPULSE__EXECUTION__MODE": '"send"',
                             "ALPHAPULSE_EXECUTION_KEY": key, "ALPHAPULSE__LOGGING__LEVEL": '"DEBUG"'})
    try:
        h = _ready(p)
        p.wait_for(lambda: p.metric("alphapulse_rpc_connected", "source") == 1, 60, "adapter connected")
        mk = Market.from_dict(h["local_chain"]["http_url"], h["local_chain"]["market"])
        ex_ring = Ring.attach(h["rings"]["execution"], timeout=5)
        ex_c = ex_ring.consumer("test-reports")
        try:
            for pool in mk.pools_for("WMATIC", "USDC"):
                mk.move_price(pool, 1.0005)
            p.wait_for(lambda: p.metric("alphapulse_pools", "strategy") >= 2, 30, "pools known")
            mk.move_price(mk.v2_pool("WMATIC", "USDC", Venue.QUICKSWAP), 1.02)
            p.wait_for(lambda: p.metric("alphapulse_tx_included_total", "execution") >= 1, 40, "an included transaction")
            reports = []
            end = time.monotonic() + 5
            while time.monotonic() < end and not any(r.status == ExecutionStatus.INCLUDED for r in reports):
                reports += [codec.parse_frame(f).tlvs[0] for f in ex_c.frames(timeout=0.1)]
            sent = {r.tx_hash for r in reports if r.status == ExecutionStatus.SENT}
            included = [r for r in reports if r.status == ExecutionStatus.INCLUDED]
            assert included and all(r.tx_hash in sent for r in included)
            for r in included:
                rc = mk.w3.eth.get_transaction_receipt("0x" + r.tx_hash.hex())
                assert rc["status"] == 1 and rc["gasUsed"] == r.gas_used and rc["blockNumber"] == r.checked_block
                assert r.amount_out_checked > r.amount_in
        finally:
            ex_c.close()
            ex_ring.close()
        shown = p.output() + p.get("/health")[1] + p.get("/metrics")[1]
        assert "ArbExecutor deployed at" in shown
        assert key[2:].lower() not in shown.lower()
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert key[2:] not in p.log_path.read_text()
