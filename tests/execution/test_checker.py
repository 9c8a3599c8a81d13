"""The checker without a chain: classification of an execution against its signal, the
executor's calldata, and a dead or slow node (a clear RpcUnavailable within the timeout)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from alphapulse.execution.checker import EthCallMethod, Execution, RevmMethod, classify
from alphapulse.execution.cycle import UnknownVenue, intrinsic_gas, signal_hops
from alphapulse.execution.rpc import RpcUnavailable
from alphapulse.protocol import codec as C
from alphapulse.protocol.layout import SIGNAL_UNPRICED, ExecutionStatus, PoolKind


def sig(**kw):
    base = dict(amount_in=1_000, amount_out=1_100, gas_cost_wei=10**15, gross_profit_usd_e8=100_000_000,
                gas_cost_usd_e8=10_000_000, net_profit_usd_e8=90_000_000, hops=2, venues=(400, 405, 0),
                fees_pips=(3000, 500, 0), pools=(b"\x01" * 20, b"\x02" * 20, bytes(20)),
                tokens=(b"\x0a" * 20, b"\x0b" * 20, bytes(20)))
    base.update(kw)
    return C.ArbitrageSignal(**base)


def test_classification_values_the_checked_output_with_the_signals_prices():
    s = sig()
    # same output, gas as priced (10**15 wei = $0.10): confirmed, net as the signal's
    assert classify(s, Execution(7, 1_100, 10**6, 10**9)) == (ExecutionStatus.CONFIRMED, 90_000_000)
    # half the profit: $0.50 gross, gas twice the priced amount ($0.20)
    assert classify(s, Execution(7, 1_050, 2 * 10**6, 10**9)) == (ExecutionStatus.CHANGED, 30_000_000)
    # still above the input, but the gas eats it
    assert classify(s, Execution(7, 1_010, 2 * 10**6, 10**9)) == (ExecutionStatus.UNPROFITABLE, -10_000_000)
    # does not repay the input
    assert classify(s, Execution(7, 990, 10**6, 10**9))[0] == ExecutionStatus.UNPROFITABLE
    assert classify(s, Execution(7, 0, 0, 10**9, "K")) == (ExecutionStatus.REVERTED, 0)
    # unpriced: no USD, profitable when the output exceeds the input
    u = sig(flags=SIGNAL_UNPRICED, gross_profit_usd_e8=0, gas_cost_usd_e8=0, net_profit_usd_e8=0)
    assert classify(u, Execution(7, 1_001, 10**6, 10**9)) == (ExecutionStatus.CHANGED, 0)
    assert classify(u, Execution(7, 1_000, 10**6, 10**9)) == (ExecutionStatus.UNPROFITABLE, 0)


def test_hops_take_their_kind_from_the_configured_venues():
    hops = signal_hops(sig(), {400: int(PoolKind.CONSTANT_PRODUCT), 405: int(PoolKind.CONCENTRATED)})
    assert [(h.kind, h.token_in, h.token_out, h.fee_pips) for h in hops] == [
        (1, "0x" + "0a" * 20, "0x" + "0b" * 20, 3000), (2, "0x" + "0b" * 20, "0x" + "0a" * 20, 500)]
    with pytest.raises(UnknownVenue, match="venue 405"):
        signal_hops(sig(), {400: 1})
    assert intrinsic_gas(b"\x00\x01") == 21_000 + 4 + 16


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("method", [EthCallMethod, RevmMethod])
def test_a_dead_node_is_a_clear_error(method):
    m = method(f"http://127.0.0.1:{_closed_port()}", timeout_s=0.5)
    hops = signal_hops(sig(), {400: 1, 405: 2})
    with pytest.raises(RpcUnavailable, match="ConnectionRefused"):
        m.run(hops, 1000)
    m.close()


@pytest.mark.parametrize("method", [EthCallMethod, RevmMethod])
def test_a_silent_node_times_out(method):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held = []
    stop = threading.Event()

    def accept():   # accepts and never answers
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        m = method(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout_s=0.3)
        t0 = time.monotonic()
        with pytest.raises(RpcUnavailable, match="no answer within 0.3 s"):
            m.run(signal_hops(sig(), {400: 1, 405: 2}), 1000)
        assert time.monotonic() - t0 < 2.0
        m.close()
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()


def test_the_in_process_evm_refuses_a_negative_number_of_cycles_to_warm():
    from alphapulse.execution.checker import RevmMethod
    with pytest.raises(ValueError, match="warm_cycles"):
        RevmMethod("http://127.0.0.1:1", warm_cycles=-1)
