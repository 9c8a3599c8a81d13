"""Differential: the Algebra kernels (alphapulse.jit.amm_algebra) pay exactly what deployed pools
pay: v1.0 (npm @cryptoalgebra/core 2.0.0, QuickSwap V3's version) and Integral 1.2 (npm
@cryptoalgebra/integral-core 1.2.10, QuickSwap's newer factory; see the second test).

One pool with positions across many ticks (spacing 60) and a wide position that keeps liquidity
everywhere. Each round: maybe a new adaptive-fee configuration, then a block of random swaps
(both directions, exact input and exact output, amounts from 1 wei to several crossed ticks,
some with a price limit that stops them partway). The kernel starts from the pool's state read
before the block and chains its own results through the block; every Swap event (amounts,
price, liquidity, tick) must equal it to the wei, and every swap the kernel refuses must revert.
The fee in force: the first swap of a block (new timestamp) recomputes it (Fee event), the
following ones reuse it; with the sigmoids' alphas at 0 the recomputed fee is the base fee,
which the test sets and checks. Scale with AP_ALGEBRA_ROUNDS (default 14, 8 swaps each).
"""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

from alphapulse.jit import amm_algebra as A
from alphapulse.jit.amm_v3 import MAX_SQRT_RATIO, MIN_SQRT_RATIO, SWAP_OK
from alphapulse.jit.wideint import from_limbs, i128_rows, to_u256

ROUNDS = int(os.environ.get("AP_ALGEBRA_ROUNDS", "14"))
SWAPS_PER_BLOCK = 8
MIN_P = from_limbs(MIN_SQRT_RATIO)
MAX_P = from_limbs(MAX_SQRT_RATIO)
FULL = 887220


@pytest.fixture(scope="module")
def algebra_node(request):
    from alphapulse.chain.algebra import ALGEBRA_GAS_LIMIT, ANVIL_ARGS
    from alphapulse.chain.anvil import Anvil, AnvilNotFound
    try:
        node = Anvil(extra_args=ANVIL_ARGS, gas_limit=ALGEBRA_GAS_LIMIT).start()
    except AnvilNotFound as exc:
        pytest.fail(str(exc))
    request.addfinalizer(node.stop)
    return node


@pytest.fixture(scope="module")
def algebra(algebra_node):
    from alphapulse.chain.algebra import deploy_algebra
    return deploy_algebra(algebra_node.http_url)


@pytest.fixture(scope="module")
def integral(algebra_node):
    from alphapulse.chain.algebra import deploy_integral
    return deploy_integral(algebra_node.http_url)


def test_npm_algebra_builds_are_the_polygon_versions():
    """The npm v1.0 factory hard-codes the pool init code hash of QuickSwap V3's Polygon
    deployment (its periphery derives pool addresses from it), and the pools' ABIs have the
    globalState layouts of the two Polygon factories' pools."""
    from alphapulse.chain.algebra import QUICKSWAP_POOL_INIT_CODE_HASH
    from alphapulse.chain.artifacts import load_artifact
    assert QUICKSWAP_POOL_INIT_CODE_HASH[2:] in load_artifact("AlgebraFactory").deployed_bytecode

    def state_names(name):
        entry = next(e for e in load_artifact(name).abi if e.get("name") == "globalState")
        return [o["name"] for o in entry["outputs"]]
    assert state_names("AlgebraPool") == ["price", "tick", "fee", "timepointIndex", "communityFeeToken0",
                                          "communityFeeToken1", "unlocked"]
    assert state_names("IntegralPool") == ["price", "tick", "lastFee", "pluginConfig", "communityFee", "unlocked"]


def _kernel(state, zero_to_one, amount_required, limit, fee, ticks, nets, swap=A.algebra_swap):
    exact_in = amount_required > 0
    return swap(to_u256(state[0]), state[1], to_u256(state[2]), fee, ticks, nets, len(ticks),
                          zero_to_one, exact_in, to_u256(abs(amount_required)), to_u256(limit), False)


def _limit(rng: random.Random, price: int, zero_to_one: bool) -> int:
    if rng.random() < 0.6:
        return MIN_P + 1 if zero_to_one else MAX_P - 1
    move = rng.uniform(0.0005, 0.04)
    return int(price * (1 - move)) if zero_to_one else int(price * (1 + move))


def _amount(rng: random.Random) -> int:
    if rng.random() < 0.08:
        return rng.choice([1, 2, 3, 1000])
    return int(10 ** rng.uniform(6, 20.3))


def test_kernel_equals_the_deployed_algebra_pool(algebra):
    rng = random.Random(20)
    pool = algebra.create_pool("TKA", "TKB", 1 << 96)
    algebra.mint(pool, -FULL, FULL, 10**19)
    bounds = set()
    for _ in range(30):
        lo = rng.randrange(-100, 100) * 60
        hi = lo + rng.randrange(1, 40) * 60
        algebra.mint(pool, lo, hi, int(10 ** rng.uniform(18, 21.5)))
        bounds.update((lo, hi))
    st = algebra.pool_state(pool)
    assert len(st.ticks) >= 40 and st.fee == 100          # Constants.BASE_FEE before any fee computation
    ticks = np.array(st.ticks, dtype=np.int32)
    nets = i128_rows(st.nets)
    assert nets.shape[0] == len(ticks)
    # the pool's tickTable holds exactly these ticks (compressed by 60, words of 256)
    words = {}
    for t in st.ticks:
        c = t // 60
        words[c >> 8] = words.get(c >> 8, 0) | (1 << (c & 255))
    for w, bits in words.items():
        assert algebra.tick_table_word(pool, w) == bits

    swaps = crossed_max = partial = refused = fee_blocks = 0
    fees_seen = set()
    for rnd in range(ROUNDS):
        base_fee = None
        if rnd % 3 == 1:
            base_fee = rng.choice([1, 50, 500, 3000, 10000, 65000])
            algebra.set_fee_configuration(pool, 0, 0, 360, 60000, 59, 8500, 0, 10, base_fee)
        elif rnd % 3 == 2:    # Algebra's default adaptive configuration: the fee follows volatility
            algebra.set_fee_configuration(pool, 2900, 12000, 360, 60000, 59, 8500, 0, 10, 100)
        before = algebra.pool_state(pool)
        assert before.ticks == st.ticks and before.nets == st.nets
        txs, plan = [], []
        price = before.price
        for _ in range(SWAPS_PER_BLOCK):
            zto = rng.random() < 0.5
            amt = _amount(rng)
            if rng.random() < 0.35:
                amt = -amt
            limit = _limit(rng, price, zto)
            plan.append((zto, amt, limit))
            txs.append(algebra.swap_tx(pool, zto, amt, limit))
        # a new block timestamp (anvil may give consecutive blocks the same second)
        now = algebra.w3.eth.get_block("latest")["timestamp"]
        algebra.w3.provider.make_request("evm_setNextBlockTimestamp", [now + rng.randint(2, 600)])
        rcs = algebra.tx.batch(txs, check=False)
        assert len({rc["blockNumber"] for rc in rcs}) == 1
        state = (before.price, before.tick, before.liquidity)
        fee = before.fee
        first_ok = True
        for (zto, amt, limit), rc in zip(plan, rcs):
            if rc["status"] != 1:
                # a swap that reverts on chain must be refused by the kernel too (SPL: the limit
                # on the wrong side of the price the earlier swaps of the block left)
                res = _kernel(state, zto, amt, limit, fee, ticks, nets)
                assert res[0] != SWAP_OK or res[1] == to_u256(0), (zto, amt, limit, res[0])
                refused += 1
                continue
            ev = algebra.swap_result(pool, rc)
            if first_ok:
                # the block's first swap recomputed the fee (new timestamp) and swapped at it
                assert ev.fee_event is not None
                fee = ev.fee_event
                if base_fee is not None:
                    assert fee == base_fee
                fee_blocks += 1
                first_ok = False
            else:
                assert ev.fee_event is None     # same timestamp: the stored fee, no recomputation
            fees_seen.add(fee)
            status, a_in, a_out, p_after, l_after, t_after, crossed = _kernel(state, zto, amt, limit, fee, ticks, nets)
            assert status == SWAP_OK, (zto, amt, limit, status)
            a_in, a_out = from_limbs(a_in), from_limbs(a_out)
            got = (ev.amount0, ev.amount1)
            want = (a_in, -a_out) if zto else (-a_out, a_in)
            assert got == want, (rnd, zto, amt, limit, fee, got, want)
            assert (ev.price, ev.liquidity, ev.tick) == (from_limbs(p_after), from_limbs(l_after), t_after)
            if amt > 0 and a_in < amt or amt < 0 and a_out < -amt:
                partial += 1
            crossed_max = max(crossed_max, crossed)
            state = (ev.price, ev.tick, ev.liquidity)
            swaps += 1
        after = algebra.pool_state(pool)
        assert (after.price, after.tick, after.liquidity) == state
        if not first_ok:
            assert after.fee == fee
    assert swaps >= ROUNDS * SWAPS_PER_BLOCK * 0.7
    assert crossed_max >= 3, crossed_max
    assert partial >= 1 and len(fees_seen) >= 4 and fee_blocks >= ROUNDS - 1


def test_integral_kernel_equals_the_deployed_integral_pool(integral):
    """Algebra Integral 1.2: steps from one initialised tick to the next (a linked list, no word
    boundaries), a per-pool tick spacing (10 here), the fee in force ``lastFee`` changed by the
    administrator's ``setFee`` between blocks (no plugin: swaps never recompute it)."""
    rng = random.Random(21)
    pool = integral.create_pool("TKA", "TKB", (1 << 96) + rng.getrandbits(80))
    integral.set_tick_spacing(pool, 10)
    integral.mint(pool, -887270, 887270, 10**19)
    for _ in range(30):
        lo = rng.randrange(-600, 600) * 10
        hi = lo + rng.randrange(1, 200) * 10
        integral.mint(pool, lo, hi, int(10 ** rng.uniform(18, 21.5)))
    st = integral.pool_state(pool)
    assert len(st.ticks) >= 40 and st.fee == 500                    # the factory's default fee
    ticks = np.array(st.ticks, dtype=np.int32)
    nets = i128_rows(st.nets)
    # the pool's linked list joins exactly these ticks, between MIN_TICK and MAX_TICK
    chain = [-887272] + list(st.ticks) + [887272]
    for prev, t, nxt in zip(chain, chain[1:], chain[2:]):
        assert integral.tick_links(pool, t) == (prev, nxt)

    swaps = crossed_max = partial = 0
    fees_seen = set()
    for rnd in range(ROUNDS):
        if rnd % 2 == 1:
            integral.set_fee(pool, rng.choice([1, 100, 500, 3000, 10000, 50000, 65535]))
        before = integral.pool_state(pool)
        txs, plan = [], []
        for _ in range(SWAPS_PER_BLOCK):
            zto = rng.random() < 0.5
            amt = _amount(rng) * (-1 if rng.random() < 0.35 else 1)
            limit = _limit(rng, before.price, zto)
            plan.append((zto, amt, limit))
            txs.append(integral.swap_tx(pool, zto, amt, limit))
        rcs = integral.tx.batch(txs, check=False)
        state = (before.price, before.tick, before.liquidity)
        fee = before.fee
        fees_seen.add(fee)
        for (zto, amt, limit), rc in zip(plan, rcs):
            res = _kernel(state, zto, amt, limit, fee, ticks, nets, A.integral_swap)
            if rc["status"] != 1:
                assert res[0] != SWAP_OK, (zto, amt, limit)
                continue
            ev = integral.swap_result(pool, rc)
            assert ev.fee_event is None
            status, a_in, a_out, p_after, l_after, t_after, crossed = res
            assert status == SWAP_OK, (zto, amt, limit, status)
            a_in, a_out = from_limbs(a_in), from_limbs(a_out)
            want = (a_in, -a_out) if zto else (-a_out, a_in)
            assert (ev.amount0, ev.amount1) == want, (rnd, zto, amt, limit, fee, want)
            assert (ev.price, ev.liquidity, ev.tick) == (from_limbs(p_after), from_limbs(l_after), t_after)
            if amt > 0 and a_in < amt or amt < 0 and a_out < -amt:
                partial += 1
            crossed_max = max(crossed_max, crossed)
            state = (ev.price, ev.tick, ev.liquidity)
            swaps += 1
        after = integral.pool_state(pool)
        assert (after.price, after.tick, after.liquidity, after.fee) == state + (fee,)
    assert swaps >= ROUNDS * SWAPS_PER_BLOCK * 0.7
    assert crossed_max >= 3 and partial >= 1 and len(fees_seen) >= 4, (crossed_max, partial, fees_seen)
