"""Signals priced on a local chain's real state: prices moved by real swaps, the pools' state read
from the contracts and fed to the strategy engine (the helpers of the strategy's chain tests)."""
from __future__ import annotations

from fractions import Fraction

from web3 import Web3

from tests.strategy.feed import Feed, signals
from tests.strategy.test_chain_e2e import chain_frames, make_engine, shape

# pools moved so that every shape appears: V2-V2, V2-V3, V3-V3 and triangles
MOVES = ((("WETH", "USDC", "v2", 400), Fraction(103, 100)),
         (("WETH", "USDC", "v3", 500), Fraction(96, 100)),
         (("WBTC", "WETH", "v2", 400), Fraction(105, 100)))


def moved_market_signals(market) -> list:
    for (a, b, kind, x), factor in MOVES:
        market.move_price(market.v2_pool(a, b, x) if kind == "v2" else market.v3_pool(a, b, x), factor)
    engine = make_engine(market)
    return signals(engine.process(chain_frames(market, Feed())) + engine.end_input_frames())


def by_shape(market, sigs, per_shape: int) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in sigs:
        lst = out.setdefault(shape(market, s), [])
        if len(lst) < per_shape:
            lst.append(s)
    return out


def kinds(market) -> dict[int, int]:
    return {int(p.venue): int(p.kind) for p in market.pools}


def path(sig) -> list[tuple[str, str, str]]:
    out = []
    for i in range(sig.hops):
        out.append((Web3.to_checksum_address("0x" + bytes(sig.pools[i]).hex()),
                    Web3.to_checksum_address("0x" + bytes(sig.tokens[i]).hex()),
                    Web3.to_checksum_address("0x" + bytes(sig.tokens[(i + 1) % sig.hops]).hex())))
    return out
