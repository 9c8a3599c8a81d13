"""The checker on a local chain with real Uniswap bytecode: signals priced on the chain's state are
confirmed to the wei by both methods while nothing moves; after a swap moves one of a signal's
pools, the check reports the output that a transaction on that state actually returns."""
from __future__ import annotations

import dataclasses

import pytest

from alphapulse.execution.checker import Checker, EthCallMethod, RevmMethod
from alphapulse.protocol.layout import ExecutionMethod, ExecutionStatus, PoolKind

from tests.execution.chain_signals import by_shape, kinds, moved_market_signals, path

METHODS = {"eth_call": EthCallMethod, "revm": RevmMethod}


@pytest.mark.parametrize("method", list(METHODS))
def test_signals_of_an_unmoved_chain_are_all_confirmed(market, anvil, method):
    sigs = moved_market_signals(market)
    picked = by_shape(market, sigs, 3)
    assert set(picked) == {"V2-V2", "V2-V3", "V3-V3", "triangle"}, sorted(picked)
    head = anvil.block_number()
    checker = Checker(METHODS[method](anvil.http_url), kinds(market))
    try:
        for shape_, group in picked.items():
            for sig in group:
                rep, ex, took = checker.check(sig)
                assert rep.status == ExecutionStatus.CONFIRMED, (shape_, rep)
                assert rep.amount_out_checked == sig.amount_out and rep.amount_in == sig.amount_in
                assert rep.checked_block == head and rep.signal_id == sig.signal_id
                assert rep.method == ExecutionMethod[{"eth_call": "ETH_CALL", "revm": "IN_PROCESS_EVM"}[method]]
                assert 21_000 + 100_000 < rep.gas_used < 1_000_000 and took > 0
    finally:
        checker.close()


@pytest.mark.parametrize("method", list(METHODS))
def test_a_pool_moved_after_the_signal_is_reported_with_what_a_transaction_returns(market, anvil, method):
    sigs = moved_market_signals(market)
    picked = by_shape(market, sigs, 1)
    checker = Checker(METHODS[method](anvil.http_url), kinds(market))
    seen = set()
    try:
        for shape_, (sig,) in sorted(picked.items()):
            first_pool, token_in, _ = path(sig)[0]
            # a competitor takes part of the edge (small) or all of it (large), trading the same way
            for share in (20, 3):
                snap = anvil.snapshot()
                try:
                    market.swap(first_pool, token_in, sig.amount_in // share * 10)
                    rep, ex, _ = checker.check(sig)
                    assert rep.checked_block == anvil.block_number()
                    assert rep.status in (ExecutionStatus.CHANGED, ExecutionStatus.UNPROFITABLE), (shape_, rep)
                    assert rep.amount_out_checked != sig.amount_out
                    truth = market.execute_cycle(path(sig), sig.amount_in, mode="atomic")
                    assert rep.amount_out_checked == truth.amount_out, (shape_, share)
                    assert (rep.status == ExecutionStatus.UNPROFITABLE) == (truth.amount_out <= sig.amount_in)
                    seen.add(ExecutionStatus(rep.status))
                finally:
                    anvil.revert(snap)
    finally:
        checker.close()
    assert seen == {ExecutionStatus.CHANGED, ExecutionStatus.UNPROFITABLE}, seen


@pytest.mark.parametrize("method", list(METHODS))
def test_a_cycle_the_pools_refuse_is_reported_reverted(market, anvil, method):
    sig = by_shape(market, moved_market_signals(market), 1)["V2-V2"][0]
    wrong = {v: int(PoolKind.CONCENTRATED) for v in kinds(market)}   # a V2 pair called as a V3 pool
    checker = Checker(METHODS[method](anvil.http_url), wrong)
    try:
        rep, ex, _ = checker.check(sig)
    finally:
        checker.close()
    assert rep.status == ExecutionStatus.REVERTED and rep.amount_out_checked == 0 and ex.reverted
