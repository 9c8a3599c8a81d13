"""The in-process EVM at a new block (real Uniswap V2/V3 bytecode on anvil): ``update()`` forks at
the new block when it arrives and reads there what the recently checked cycles touch, so the first
check of the block forks nothing and loads no account; its result is, at every block, the output
``eth_call`` gives on the node and the very execution a fork made by the check gives (output, gas,
gas price), across blocks whose swaps move the checked pools, and across a reorganisation."""
from __future__ import annotations

from alphapulse.execution.checker import EthCallMethod, RevmMethod
from alphapulse.execution.cycle import Hop
from alphapulse.protocol.layout import PoolKind, Venue

Q, S = Venue.QUICKSWAP, Venue.SUSHISWAP_POLYGON
AMOUNT_IN = 1_000 * 10**6   # USDC


def cycles(mk) -> dict[str, list[tuple]]:
    v2, v3 = mk.v2_pool, mk.v3_pool
    return {
        "2hop_v2_v3": [(v2("WETH", "USDC", Q), "USDC", "WETH"), (v3("WETH", "USDC", 500), "WETH", "USDC")],
        "2hop_v3_v3": [(v3("WETH", "USDC", 3000), "USDC", "WETH"), (v3("WETH", "USDC", 500), "WETH", "USDC")],
        "3hop_v2_v3": [(v2("WBTC", "USDC", Q), "USDC", "WBTC"), (v2("WBTC", "WETH", S), "WBTC", "WETH"),
                       (v3("WETH", "USDC", 500), "WETH", "USDC")],
    }


def hops_of(mk, path) -> list[Hop]:
    return [Hop(p.address, int(p.kind), mk.tokens[a].address, mk.tokens[b].address,
                int(p.fee_pips) if p.kind == PoolKind.CONSTANT_PRODUCT else 0) for p, a, b in path]


def check_all(mk, warmed, url, eth, paths, *, prepared: bool) -> None:
    """Every cycle checked by ``warmed`` equals eth_call's output and a check-made fork's execution;
    with ``prepared`` the checks fork nothing and load no account."""
    lazy = RevmMethod(url, warm_cycles=0)
    try:
        forks, accounts = warmed.forks_on_check, set(warmed.evm.db_accounts) if prepared else set()
        for shape, path in paths.items():
            hops = hops_of(mk, path)
            got, ref, truth = warmed.run(hops, AMOUNT_IN), lazy.run(hops, AMOUNT_IN), eth.run(hops, AMOUNT_IN)
            assert not got.reverted, (shape, got)
            assert got.amount_out == truth.amount_out and got.block == truth.block, (shape, got, truth)
            assert got == ref, (shape, got, ref)   # output, gas, gas price, block
        if prepared:
            assert warmed.forks_on_check == forks
            assert set(warmed.evm.db_accounts) == accounts   # nothing read from the node on the check's path
    finally:
        lazy.close()


def test_update_prepares_each_new_block_and_checks_equal_eth_call(market, anvil):
    mk, paths = market, cycles(market)
    weth_usdc_v3 = mk.v3_pool("WETH", "USDC", 500)
    moves = [  # (pool, token in, amount): each block moves pools of the checked cycles, both ways
        [(mk.v2_pool("WETH", "USDC", Q), "USDC", 40_000 * 10**6)],
        [(weth_usdc_v3, "WETH", 30 * 10**18)],                                   # crosses ticks
        [(mk.v3_pool("WETH", "USDC", 3000), "USDC", 25_000 * 10**6), (weth_usdc_v3, "USDC", 50_000 * 10**6),
         (mk.v2_pool("WBTC", "WETH", S), "WETH", 5 * 10**18)],                   # one block, three swaps
        [(mk.v2_pool("WBTC", "USDC", Q), "WBTC", 10**7)],
    ]
    eth = EthCallMethod(anvil.http_url)
    warmed = RevmMethod(anvil.http_url)
    try:
        assert warmed.update() and warmed.forks == 1   # the first fork, nothing to warm yet
        check_all(mk, warmed, anvil.http_url, eth, paths, prepared=False)
        assert not warmed.update()                         # same block: nothing to do
        pools = {p.address.lower() for path in paths.values() for p, _, _ in path}
        for block_moves in moves:
            rcs = mk.sender.batch([mk.swap_tx(p, t, amount, mk.traders[0]) for p, t, amount in block_moves])
            assert len({rc["blockNumber"] for rc in rcs}) == 1
            assert warmed.update() and warmed.block == anvil.block_number()
            assert pools <= {a.lower() for a in warmed.evm.db_accounts}   # read before any check
            check_all(mk, warmed, anvil.http_url, eth, paths, prepared=True)
        # a reorganisation: the block is replaced by another of the same number
        snap = anvil.snapshot()
        mk.swap(mk.v2_pool("WETH", "USDC", Q), "USDC", 40_000 * 10**6)
        assert warmed.update()
        check_all(mk, warmed, anvil.http_url, eth, paths, prepared=True)
        number = warmed.block
        anvil.revert(snap)
        mk.swap(weth_usdc_v3, "WETH", 20 * 10**18)
        assert warmed.update() and warmed.block == number
        check_all(mk, warmed, anvil.http_url, eth, paths, prepared=True)
        # a block no update() prepared: the check forks itself, with the same result
        mk.swap(weth_usdc_v3, "USDC", 20_000 * 10**6)
        before = warmed.forks_on_check
        check_all(mk, warmed, anvil.http_url, eth, paths, prepared=False)
        assert warmed.forks_on_check == before + 1
    finally:
        warmed.close()
        eth.close()
