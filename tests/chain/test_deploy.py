"""The deployed market is real Uniswap: addresses, decimals and venues are what the contracts
say, swaps pay exactly what Router02/QuoterV2 and the V2 formula say, V3 swaps cross ticks, and
cycles execute with exact, consistent results."""
from fractions import Fraction

import pytest

from alphapulse.chain.deploy import DEFAULT_PAIRS, DEFAULT_TOKENS
from alphapulse.protocol.layout import PoolKind, Venue


def v2_out(amount_in: int, r_in: int, r_out: int) -> int:
    return amount_in * 997 * r_out // (r_in * 1000 + amount_in * 997)


def test_tokens_have_the_declared_decimals(market):
    for spec in DEFAULT_TOKENS:
        token = market.tokens[spec.symbol]
        c = market.erc20(spec.symbol)
        assert c.functions.decimals().call() == spec.decimals == token.decimals
        assert c.functions.symbol().call() == spec.symbol
    assert {market.tokens[s].decimals for s in ("WMATIC", "USDC", "WBTC")} == {18, 6, 8}
    assert market.decimals[market.tokens["USDC"].address] == 6


def test_every_pool_is_registered_in_its_factory(market):
    n_v2 = sum(len(p.v2_venues) for p in DEFAULT_PAIRS)
    n_v3 = sum(len(p.v3_fees) for p in DEFAULT_PAIRS)
    assert len([p for p in market.pools if p.kind == PoolKind.CONSTANT_PRODUCT]) == n_v2
    assert len([p for p in market.pools if p.kind == PoolKind.CONCENTRATED]) == n_v3
    assert market.factory_venues == {market.v2_factories[Venue.QUICKSWAP]: Venue.QUICKSWAP,
                                     market.v2_factories[Venue.SUSHISWAP_POLYGON]: Venue.SUSHISWAP_POLYGON,
                                     market.v3_factory: Venue.UNISWAP_V3_POLYGON}
    for p in market.pools:
        assert int(p.token0, 16) < int(p.token1, 16)
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            f = market.contract("UniswapV2Factory", p.factory)
            assert f.functions.getPair(p.token1, p.token0).call() == p.address
            pair = market.contract("UniswapV2Pair", p.address)
            assert pair.functions.factory().call() == p.factory
            assert min(market.reserves(p)) > 0
        else:
            f = market.contract("UniswapV3Factory", p.factory)
            assert f.functions.getPool(p.token0, p.token1, p.fee_pips).call() == p.address
            pool = market.contract("UniswapV3Pool", p.address)
            assert pool.functions.tickSpacing().call() == p.tick_spacing
            assert pool.functions.fee().call() == p.fee_pips
            assert len(market.v3_positions[p.address]) == 4   # full range + 3 concentrated


def test_pools_on_the_same_pair_start_at_the_same_price(market):
    for a, b in (("WMATIC", "USDC"), ("WETH", "USDC"), ("WBTC", "WETH")):
        prices = [market.price(p) for p in market.pools_for(a, b)]
        assert len(prices) >= 3
        for price in prices:
            assert abs(price / prices[0] - 1) < Fraction(1, 10**6)
    # USD prices of the spec: 1 WETH = 3000 USDC in base units
    weth_usdc = market.v2_pool("WETH", "USDC", Venue.QUICKSWAP)
    p = market.price(weth_usdc)
    per_weth = p if weth_usdc.token0 == market.tokens["WETH"].address else 1 / p
    assert per_weth * 10**18 / 10**6 == pytest.approx(3000, rel=1e-9)


@pytest.mark.parametrize("token_in,amount", [("WMATIC", 1_234 * 10**18), ("USDC", 777 * 10**6), ("USDC", 1)])
def test_v2_swap_pays_exactly_get_amounts_out_and_the_formula(market, token_in, amount):
    pool = market.v2_pool("WMATIC", "USDC", Venue.SUSHISWAP_POLYGON)
    r0, r1 = market.reserves(pool)
    r_in, r_out = (r0, r1) if market.tokens[token_in].address == pool.token0 else (r1, r0)
    expected = market.v2_get_amount_out(pool, token_in, amount)
    assert expected == v2_out(amount, r_in, r_out)
    out_token = pool.other(market.tokens[token_in].address)
    before = market.balance(market.traders[0], out_token)
    res = market.v2_swap(pool, token_in, amount)
    assert res.amount_in == amount and res.amount_out == expected
    assert market.balance(market.traders[0], out_token) - before == expected
    r0b, r1b = market.reserves(pool)
    assert (r0b, r1b) == ((r0 + amount, r1 - expected) if pool.token0 == res.token_in else (r0 - expected, r1 + amount))


@pytest.mark.parametrize("token_in", ["WETH", "USDC"])
def test_v3_swap_crosses_ticks_and_equals_quoter_v2(market, token_in):
    pool = market.v3_pool("WETH", "USDC", 3000)
    amount = 700 * 10**18 if token_in == "WETH" else 1_200_000 * 10**6
    quote = market.quote_v3(pool, token_in, amount)
    assert quote.initialized_ticks_crossed >= 2
    _, tick_before, _ = market.slot0(pool)
    res = market.v3_swap(pool, token_in, amount)
    assert res.amount_in == amount
    assert res.amount_out == quote.amount_out > 0
    assert res.sqrt_price_x96 == quote.sqrt_price_x96_after
    sqrt_p, tick, liquidity = market.slot0(pool)
    assert (sqrt_p, tick, liquidity) == (res.sqrt_price_x96, res.tick, res.liquidity)
    assert abs(tick - tick_before) > 2 * pool.tick_spacing


def test_v3_exact_output_quote_matches_exact_input(market):
    pool = market.v3_pool("WMATIC", "USDC", 500)
    need = market.quote_v3_exact_output(pool, "USDC", 5_000 * 10**18).amount_out  # USDC needed
    assert market.quote_v3(pool, "USDC", need).amount_out >= 5_000 * 10**18


def test_move_price_opens_a_price_difference_between_venues(market):
    quick = market.v2_pool("WETH", "USDC", Venue.QUICKSWAP)
    sushi = market.v2_pool("WETH", "USDC", Venue.SUSHISWAP_POLYGON)
    before = market.price(quick)
    market.move_price(quick, Fraction(102, 100))
    assert market.price(quick) / before == pytest.approx(1.02, rel=2e-3)
    assert market.price(sushi) == before
    v3 = market.v3_pool("WETH", "USDC", 3000)
    before = market.price(v3)
    market.move_price(v3, Fraction(97, 100))
    assert market.price(v3) / before == pytest.approx(0.97, rel=1e-6)


def test_v2_liquidity_add_and_remove_round_trip(market):
    pool = market.v2_pool("WBTC", "USDC", Venue.QUICKSWAP)
    r0, r1 = market.reserves(pool)
    lp = market.add_liquidity_v2(pool, r0 // 10, r1 // 10)
    assert lp > 0
    assert market.reserves(pool) == (r0 + r0 // 10, r1 + r1 // 10)
    a0, a1 = market.remove_liquidity_v2(pool, lp)
    assert 0 < r0 // 10 - a0 <= r0 // 10 // 10**6 + 1 and 0 < r1 // 10 - a1 <= r1 // 10 // 10**6 + 1


def test_v3_liquidity_add_and_remove(market):
    pool = market.v3_pool("WBTC", "USDC", 3000)
    _, tick, liq = market.slot0(pool)
    lo = (tick // pool.tick_spacing - 1) * pool.tick_spacing
    token_id, added, a0, a1 = market.add_liquidity_v3(pool, lo, lo + 3 * pool.tick_spacing, 10**8, 60_000 * 10**6)
    assert added > 0 and a0 > 0 and a1 > 0
    assert market.slot0(pool)[2] == liq + added
    c0, c1 = market.remove_liquidity_v3(token_id)
    assert market.slot0(pool)[2] == liq
    assert 0 <= a0 - c0 <= 1 and 0 <= a1 - c1 <= 1


CYCLES = {
    "v2-v2": lambda m: [(m.v2_pool("WETH", "USDC", 400), "USDC", "WETH"), (m.v2_pool("WETH", "USDC", 401), "WETH", "USDC")],
    "v2-v3": lambda m: [(m.v2_pool("WMATIC", "USDC", 400), "USDC", "WMATIC"), (m.v3_pool("WMATIC", "USDC", 500), "WMATIC", "USDC")],
    "v3-v3": lambda m: [(m.v3_pool("WETH", "USDC", 500), "USDC", "WETH"), (m.v3_pool("WETH", "USDC", 3000), "WETH", "USDC")],
    "triangle": lambda m: [(m.v2_pool("WMATIC", "USDC", 401), "USDC", "WMATIC"),
                           (m.v3_pool("WMATIC", "WETH", 3000), "WMATIC", "WETH"),
                           (m.v2_pool("WETH", "USDC", 400), "WETH", "USDC")],
}


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_cycle_atomic_and_sequential_pay_the_same_exact_amounts(market, anvil, name):
    path = CYCLES[name](market)
    market.move_price(path[0][0], Fraction(98, 100) if market.pool(path[0][0]).token0 == market.tokens[path[0][1]].address else Fraction(102, 100))
    amount = 20_000 * 10**6
    # predicted hop by hop with the pools' own quoting functions
    expected, x = [], amount
    for pool, t_in, _ in path:
        p = market.pool(pool)
        x = market.v2_get_amount_out(p, t_in, x) if p.kind == PoolKind.CONSTANT_PRODUCT else market.quote_v3(p, t_in, x).amount_out
        expected.append(x)
    snap = anvil.snapshot()
    atomic = market.execute_cycle(path, amount, mode="atomic")
    anvil.revert(snap)
    sequential = market.execute_cycle(path, amount, mode="sequential")
    assert list(atomic.hop_amounts) == expected == list(sequential.hop_amounts)
    assert atomic.amount_out == sequential.amount_out == expected[-1]
    assert len(sequential.tx_hashes) == len(path) and len(atomic.tx_hashes) == 1
    assert market.w3.eth.get_block(sequential.block_number)["transactions"].__len__() == len(path)


def test_cycle_path_errors_are_clear(market):
    with pytest.raises(ValueError, match="does not trade"):
        market.cycle_hops([(market.v2_pool("WETH", "USDC", 400), "USDC", "WMATIC")])
    with pytest.raises(ValueError, match="path broken"):
        market.cycle_hops([(market.v2_pool("WETH", "USDC", 400), "USDC", "WETH"),
                           (market.v2_pool("WMATIC", "USDC", 400), "USDC", "WMATIC")])


def test_new_tokens_and_pools_after_deploy(market):
    from web3.exceptions import ContractLogicError
    bad = market.add_token("BAD", reverting_decimals=True)
    assert bad.decimals_reverts
    with pytest.raises(ContractLogicError, match="decimals"):
        market.erc20("BAD").functions.decimals().call()
    assert market.balance(market.traders[0], "BAD") > 0
    bad_pool = market.create_v2_pool("BAD", "USDC", Venue.QUICKSWAP, 10**21, 10**9)
    assert market.contract("UniswapV2Factory", bad_pool.factory).functions.getPair(bad_pool.token0, bad_pool.token1).call() == bad_pool.address
    res = market.v2_swap(bad_pool, "USDC", 10**6)    # the pool itself works; only decimals() is broken
    assert res.amount_out > 0

    new = market.add_token("LINK", 8, 15)
    assert market.erc20("LINK").functions.decimals().call() == 8
    v3 = market.create_v3_pool("LINK", "WETH", 10000, 2_000 * 10**8, 10 * 10**18)
    assert v3.tick_spacing == 200 and v3 in market.pools and len(market.v3_positions[v3.address]) == 4
    price = market.price(v3)
    per_link = price if v3.token0 == new.address else 1 / price   # WETH base units per LINK base unit
    assert per_link * 10**8 / 10**18 == pytest.approx(10 / 2_000, rel=1e-6)
    quote = market.quote_v3(v3, "WETH", 10**18)
    assert market.v3_swap(v3, "WETH", 10**18).amount_out == quote.amount_out


def test_market_description_round_trips_to_another_process(market, anvil):
    import json
    from alphapulse.chain.deploy import Market
    assert "LINK" not in market.tokens and "LINK" not in market.usd_prices   # per-test isolation
    d = json.loads(json.dumps(market.to_dict()))
    other = Market.from_dict(anvil.http_url, d)
    assert other.pools == market.pools and other.tokens == market.tokens
    assert other.factory_venues == market.factory_venues and other.usd_prices == market.usd_prices
    pool = other.v2_pool("WMATIC", "USDC", Venue.QUICKSWAP)
    r0, r1 = market.reserves(pool)
    r_in, r_out = (r0, r1) if pool.token0 == other.tokens["USDC"].address else (r1, r0)
    assert other.v2_swap(pool, "USDC", 10**6).amount_out == v2_out(10**6, r_in, r_out)


def test_market_survives_a_node_restart_from_a_state_dump(anvil_factory, tmp_path):
    from alphapulse.chain.deploy import deploy_market
    node = anvil_factory()
    m = deploy_market(node.http_url)
    pool = m.v3_pool("WETH", "USDC", 500)
    m.v3_swap(pool, "USDC", 50_000 * 10**6)
    state_before = m.slot0(pool)
    head = node.rpc("eth_getBlockByNumber", ["latest", False])["hash"]
    node.restart(load_state=node.dump_state(tmp_path / "market.json"))
    assert node.rpc("eth_getBlockByNumber", ["latest", False])["hash"] == head
    assert m.slot0(pool) == state_before          # same Market object, same URL, new process
    quote = m.quote_v3(pool, "WETH", 10**18)
    assert m.v3_swap(pool, "WETH", 10**18).amount_out == quote.amount_out


def test_v3_state_lists_every_initialised_tick_with_liquidity_net(market):
    pool = market.v3_pool("WMATIC", "USDC", 500)   # spacing 10: 1,387 bitmap words
    state = market.v3_state(pool)
    assert (state.sqrt_price_x96, state.tick, state.liquidity) == market.slot0(pool)
    npm = market.contract("NonfungiblePositionManager", market.v3_position_manager)
    expected: dict[int, int] = {}
    for token_id in market.v3_positions[pool.address]:
        pos = npm.functions.positions(token_id).call()
        lo, hi, liq = pos[5], pos[6], pos[7]
        expected[lo] = expected.get(lo, 0) + liq
        expected[hi] = expected.get(hi, 0) - liq
    assert dict(state.ticks) == expected and len(expected) == 8
    assert [t for t, _ in state.ticks] == sorted(expected)
    # liquidity in range = sum of liquidityNet of ticks at or below the current tick
    assert sum(n for t, n in state.ticks if t <= state.tick) == state.liquidity
    # a past block is read as of that block
    before = state.block_number
    market.add_liquidity_v3(pool, state.ticks[1][0], state.ticks[1][0] + 7 * pool.tick_spacing, 10**20, 10**8)
    assert len(market.v3_state(pool).ticks) == 9 and market.v3_state(pool, before) == state
    assert market.pool_state(pool, before) == state
    v2 = market.v2_pool("WMATIC", "USDC", Venue.QUICKSWAP)
    s2 = market.pool_state(v2)
    assert (s2.reserve0, s2.reserve1, s2.fee_pips) == (*market.reserves(v2), 3000)


def test_batched_quotes_equal_single_quotes_and_real_swaps(market, anvil):
    v3 = market.v3_pool("WBTC", "USDC", 3000)
    v2 = market.v2_pool("WBTC", "USDC", Venue.SUSHISWAP_POLYGON)
    amounts = [1, 10**3, 10**6, 10**8, 10**9, 10**10]  # 1 sat .. 100 WBTC (crosses ticks)
    block = market.w3.eth.block_number
    q3 = market.quote_v3_many(v3, "WBTC", amounts, block)
    q2 = market.v2_get_amount_out_many(v2, "WBTC", amounts, block)
    assert [q.amount_out for q in q3] == [market.quote_v3(v3, "WBTC", a).amount_out for a in amounts]
    assert q2 == [market.v2_get_amount_out(v2, "WBTC", a) for a in amounts]
    assert q3[-1].initialized_ticks_crossed >= 1
    for i in (2, 5):
        for pool, quotes in ((v3, q3), (v2, q2)):
            snap = anvil.snapshot()
            out = market.swap(pool, "WBTC", amounts[i]).amount_out
            anvil.revert(snap)
            assert out == (quotes[i].amount_out if pool is v3 else quotes[i])
    # a quote that reverts comes back as None, the rest of the batch still answers
    assert market.v2_get_amount_out_many(v2, "WBTC", [0, 10**6])[0] is None


def test_cycle_executor_refuses_partial_fills_and_foreign_callbacks(market):
    from web3.exceptions import ContractLogicError
    from alphapulse.chain.txs import ChainTxError
    pool = market.v3_pool("USDT", "USDC", 500)
    with pytest.raises(ChainTxError, match="partial fill"):
        market.execute_cycle([(pool, "USDC", "USDT")], 10**32)   # reaches MAX_SQRT_RATIO before it is spent
    executor = market.contract("CycleExecutor", market.executor)
    with pytest.raises(ContractLogicError, match="callback"):
        executor.functions.uniswapV3SwapCallback(1, 0, b"\x00" * 32).call({"from": market.traders[0]})
