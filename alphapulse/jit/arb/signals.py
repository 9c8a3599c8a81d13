"""The signal table and cycle evaluation: screen, size, value, write the frame.

The signal table (``sig_keys`` int64[S, 3] keyed by ``cycle_key``,
``sig_vals`` float64[S, SVCOL]) holds each live cycle's last publication so a
cycle is re-published only when its profit moves by ``PR_REPUBLISH_BPS`` (no
flooding). ``_is_candidate`` screens a cycle on the cached marginal rates
(``rate_cache`` float64[P, RCCOL]); ``evaluate_cycle`` sizes it
(:mod:`.sizing`), values its gross profit and gas in USD x 1e8
(:mod:`.valuation`) and writes one sealed ArbitrageSignal frame
(``SIG_FRAME`` bytes) at ``out[pos:]`` when it clears ``PR_MIN_NET_USD_E8``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.clock import CAL_SIZE, fast_ns
from alphapulse.jit.crc import CLMUL
from alphapulse.jit.encode import seal_frame_with, write_header, write_tlv_header
from alphapulse.jit.memory import prefetch, st_u16, st_u32, st_u64
from alphapulse.jit.pool_state import (
    C_ADDR, C_FEE, C_KIND, C_STATE_BLOCK, C_TOKEN0, C_TOKEN1, C_VENUE, KIND_V2, K_CANDIDATES, K_CYCLES,
    K_OUT_FULL, K_SCREENED, K_SIGNALS, K_SIGNALS_SUPPRESSED, K_SIGNAL_TABLE_FULL, K_SIM_FAILS, M_CHAIN_ID,
    M_GAS_BASE, M_GAS_POOL, M_GAS_POOL_EPOCH, M_GAS_PRIO, M_GAS_TOKEN, M_GAS_USD, M_GAS_VIA, M_PRICE_EPOCH,
    M_CLOCK, M_SIGNAL_ID, M_STATE_VER, T_ADDR, pool_tradable,
)
from alphapulse.jit.wideint import U0, u256_cmp, u256_mul, u256_sub, u256_to_f64
from alphapulse.protocol import layout as L

from alphapulse.jit.arb.params import (
    HEADER_SIZE, PR_CHAIN_ID, PR_GAS_BASE_UNITS, PR_GAS_V2_UNITS, PR_GAS_V3_UNITS, PR_MAX_INPUT_BPS,
    PR_MIN_NET_USD_E8, PR_MIN_PRICE_DEPTH_USD, PR_MIN_SPREAD_E9, PR_REPUBLISH_BLOCKS, PR_REPUBLISH_BPS,
    PR_SCREEN_PCT, PR_SEARCH_FLAGS, PR_SIGNAL_CRC, PR_SOURCE, PR_STRATEGY_ID, RC_LIVE, RC_RATE0, RC_RATE1,
    RC_VALID, SIGNAL_DOMAIN, SIG_FRAME, SIG_SIZE, SIG_TYPE, SV_AMOUNT_IN, SV_GROSS, SV_LAST_BLOCK, SV_LIVE,
    S_AMOUNT_IN, S_AMOUNT_OUT, S_BLOCK, S_CHAIN, S_FEES, S_FLAGS, S_GAS_USD, S_GAS_WEI, S_GROSS, S_HOPS, S_ID,
    S_NET, S_POOLS, S_SPREAD, S_STRATEGY, S_TOKENS, S_TRIGGER, S_VENUES, TM_ADDR, TM_MIN, UNPRICED,
)
from alphapulse.jit.arb.cycles import _marginal_rate, virtual_reserves
from alphapulse.jit.arb.sizing import model_optimum, optimise_input
from alphapulse.jit.arb.valuation import (
    cached_price_pool, gas_usd_e8, gas_via_pool, price_pool, usd_e8_at, usd_e8_f,
)
from alphapulse.jit.arb.prefetch import _prefetch_span


# ---------------------------------------------------------------- signal table (no flooding)
@njit(cache=True, inline="always")
def _sig_hash(sig_keys, k0, k1, k2):
    """The key's home slot in the signal table."""
    return np.int64((np.uint64(k0) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(k1) * np.uint64(0xC2B2AE3D27D4EB4F)
                     ^ np.uint64(k2) * np.uint64(0x165667B19E3779F9)) >> np.uint64(17)) & (sig_keys.shape[0] - 1)


@njit(cache=True)
def _sig_slot(sig_keys, k0, k1, k2):
    """Slot of the key, or of the empty slot where it would go; -1 when the table is full."""
    mask = sig_keys.shape[0] - 1
    h = _sig_hash(sig_keys, k0, k1, k2)
    for _ in range(sig_keys.shape[0]):
        if sig_keys[h, 0] == 0:
            return h
        if sig_keys[h, 0] == k0 and sig_keys[h, 1] == k1 and sig_keys[h, 2] == k2:
            return h
        h = (h + 1) & mask
    return -1


@njit(cache=True)
def cycle_key(cyc_p, cyc_z, hops):
    """Canonical key of a directed cycle: rotation starting at its smallest pool row."""
    m = 0
    for i in range(1, hops):
        if cyc_p[i] < cyc_p[m]:
            m = i
    k0 = np.int64(cyc_p[m] + 1) | (np.int64(hops) << 40) | (np.int64(1 if cyc_z[m] else 0) << 48)
    k1 = np.int64(cyc_p[(m + 1) % hops])
    k2 = np.int64(cyc_p[(m + 2) % hops]) if hops == 3 else np.int64(-1)
    return k0, k1, k2


# ---------------------------------------------------------------- cycle evaluation
@njit(cache=True, inline="always")
def _cached_rate(pools, rate_cache, epoch, p, zero_for_one):
    """_marginal_rate, computed once per state of the pool (``process_batch`` invalidates the
    pool's entry whenever a TLV changes its state)."""
    if rate_cache[p, RC_VALID] == 0.0:
        rate_cache[p, RC_RATE0] = _marginal_rate(pools, p, True)
        rate_cache[p, RC_RATE1] = _marginal_rate(pools, p, False)
        rate_cache[p, RC_VALID] = 1.0
    return rate_cache[p, RC_RATE0] if zero_for_one else rate_cache[p, RC_RATE1]


@njit(cache=True, inline="always")
def _set_dead(sig_vals, rate_cache, slot, cp, hops):
    """Forget the live signal in ``slot`` (its return is published again): per-pool live counts follow."""
    if sig_vals[slot, SV_LIVE] != 0.0:
        sig_vals[slot, SV_LIVE] = 0.0
        for i in range(hops):
            rate_cache[cp[i], RC_LIVE] -= 1.0


@njit(cache=True, inline="always")
def _set_live(sig_vals, rate_cache, slot, cp, hops):
    if sig_vals[slot, SV_LIVE] == 0.0:
        sig_vals[slot, SV_LIVE] = 1.0
        for i in range(hops):
            rate_cache[cp[i], RC_LIVE] += 1.0


@njit(cache=True, inline="always")
def _may_be_live(rate_cache, cp, hops):
    """False when some pool of the cycle is on no live signal (then the cycle's is not live either)."""
    for i in range(hops):
        if rate_cache[cp[i], RC_LIVE] <= 0.0:
            return False
    return True


@njit(cache=True)
def _token_in(pools, p, zero_for_one):
    return np.int64(pools[p, C_TOKEN0]) if zero_for_one else np.int64(pools[p, C_TOKEN1])


@njit(cache=True)
def _choose_start(pools, tokens, pairs, pair_ht, tn, cyc_p, cyc_z, hops, stable, price_epoch, min_depth_usd):
    """Rotation that starts the cycle at the stable coin, else at a priced token, else at hop 0;
    (hop index, the start token's price pool: -1 when it is the stable coin or unpriced)."""
    for i in range(hops):
        if _token_in(pools, cyc_p[i], cyc_z[i]) == stable:
            return i, -1
    if stable >= 0:
        for i in range(hops):
            pp = cached_price_pool(pools, tokens, pairs, pair_ht, tn, _token_in(pools, cyc_p[i], cyc_z[i]),
                                   stable, price_epoch, min_depth_usd)
            if pp >= 0:
                return i, pp
    return 0, -1


@njit(cache=True)
def _st_addr(buf, pos, w0, w1, w2):
    st_u64(buf, pos, w0)
    st_u64(buf, pos + 8, w1)
    st_u32(buf, pos + 16, w2)


@njit(cache=True)
def _st_u128(buf, pos, x):
    st_u64(buf, pos, x[0])
    st_u64(buf, pos + 8, x[1])


@njit(cache=True, inline="always")
def _is_candidate(pools, sig_keys, sig_vals, counters, rate_cache, epoch, cp, cz, hops, params):
    """Cheap screen run for every enumerated cycle (few arguments: called in the inner loops).

    True when the product of the marginal rates beats 1 + PR_MIN_SPREAD_E9; otherwise the
    cycle's live signal, if any, is forgotten so that its return is published again (the
    signal table is only probed when every pool of the cycle is on some live signal).
    """
    counters[K_CYCLES] += 1
    rate = 1.0
    for i in range(hops):
        rate *= _cached_rate(pools, rate_cache, epoch, cp[i], cz[i])
    if rate > 1.0 + params[PR_MIN_SPREAD_E9] * 1e-9:
        return True
    if _may_be_live(rate_cache, cp, hops):
        k0, k1, k2 = cycle_key(cp, cz, hops)
        slot = _sig_slot(sig_keys, k0, k1, k2)
        if slot >= 0:
            _set_dead(sig_vals, rate_cache, slot, cp, hops)
    return False


@njit(cache=True)
def evaluate_cycle(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
                   sig_keys, sig_vals, counters, cp, cz, hops, stable, native, trigger_ts,
                   out, pos, seq, rate_cache, epoch):
    """Evaluate one directed cycle; write a signal frame at ``out[pos:]`` when it is due.

    Returns the new write position (``pos`` unchanged when nothing was written).
    Callers screen with :func:`_is_candidate` first (which counts the cycle): the product of
    its marginal rates beats 1.
    """
    k0, k1, k2 = cycle_key(cp, cz, hops)
    counters[K_CANDIDATES] += 1
    # what the end of the evaluation reads, fetched while the sizing runs: the signal table's
    # slot and the tokens' rows (their addresses go into the frame)
    h = _sig_hash(sig_keys, k0, k1, k2)
    prefetch(sig_keys, h * sig_keys.shape[1] * 8)
    prefetch(sig_vals, h * sig_vals.shape[1] * 8)
    if pos + SIG_FRAME <= out.shape[0]:
        _prefetch_span(out, pos, SIG_FRAME)     # where the frame goes
    for i in range(hops):
        prefetch(tokens, _token_in(pools, cp[i], cz[i]) * tokens.shape[1] * 8)
    # rotate so that the start token is the priced one
    # canonical rotation first (smallest pool row first), so that the same cycle found
    # from any of its pools gets the same start token and the same figures
    m = 0
    for i in range(1, hops):
        if cp[i] < cp[m]:
            m = i
    rp = np.empty(3, np.int64)
    rz = np.empty(3, np.bool_)
    for i in range(hops):
        rp[i] = cp[(i + m) % hops]
        rz[i] = cz[(i + m) % hops]
    price_epoch = meta[M_PRICE_EPOCH] + 1
    min_depth = params[PR_MIN_PRICE_DEPTH_USD]
    s, start_pp = _choose_start(pools, tokens, pairs, pair_ht, tn, rp, rz, hops, stable, price_epoch, min_depth)
    if s != 0:
        for i in range(hops):
            cp[i] = rp[(i + s) % hops]
            cz[i] = rz[(i + s) % hops]
        for i in range(hops):
            rp[i] = cp[i]
            rz[i] = cz[i]
    start_token = _token_in(pools, rp[0], rz[0])
    slot = _sig_slot(sig_keys, k0, k1, k2)
    # gas of the path
    n_v2 = 0
    for i in range(hops):
        if pools[rp[i], C_KIND] == np.uint64(KIND_V2):
            n_v2 += 1
    units = params[PR_GAS_BASE_UNITS] + n_v2 * params[PR_GAS_V2_UNITS] + (hops - n_v2) * params[PR_GAS_V3_UNITS]
    gas_price = meta[M_GAS_BASE] + meta[M_GAS_PRIO]
    gas_wei, _ = u256_mul((np.uint64(units), U0, U0, U0), (np.uint64(gas_price), U0, U0, U0))
    # its USD value, once per price epoch, gas price and path shape; the native token's price
    # pool once per price epoch
    gslot = M_GAS_USD + 3 * ((hops - 2) * 4 + n_v2)
    gp = meta[M_GAS_POOL]
    if (meta[M_GAS_POOL_EPOCH] != price_epoch or meta[M_GAS_TOKEN] != native
            or (gp >= 0 and not pool_tradable(pools, tn, gp))):
        # as cached_price_pool: look it up again, and every gas value made with it
        gp = -1
        if native >= 0 and stable >= 0 and native != stable:
            gp = price_pool(pools, tokens, pairs, pair_ht, tn, native, stable, min_depth)
        meta[M_GAS_POOL] = gp
        # no pool to the stable coin: through the deepest pool to a token that has one
        meta[M_GAS_VIA] = (gas_via_pool(pools, tokens, pairs, pair_ht, tn, native, stable, price_epoch, min_depth)
                           if gp < 0 and native >= 0 and stable >= 0 and native != stable else -1)
        meta[M_GAS_POOL_EPOCH] = price_epoch
        meta[M_GAS_TOKEN] = native
        for k in range(8):
            meta[M_GAS_USD + 3 * k] = 0
    if meta[gslot] != price_epoch or meta[gslot + 1] != gas_price:
        v, ok = gas_usd_e8(pools, tokens, meta, gas_wei, native, stable)
        meta[gslot + 2] = v if ok else -1
        meta[gslot + 1] = gas_price
        meta[gslot] = price_epoch
    gas_usd = meta[gslot + 2]
    gas_priced = gas_usd >= 0 or gas_price == 0    # no gas price yet: the gas costs nothing known
    if gas_usd < 0:
        gas_usd = 0
    min_profit = (U0, U0, U0, U0)
    for r in range(token_min.shape[0]):
        if (token_min[r, TM_ADDR] == tokens[start_token, T_ADDR]
                and token_min[r, TM_ADDR + 1] == tokens[start_token, T_ADDR + 1]
                and token_min[r, TM_ADDR + 2] == tokens[start_token, T_ADDR + 2]):
            min_profit = (token_min[r, TM_MIN], token_min[r, TM_MIN + 1], U0, U0)
    # Float screen before the exact search: the closed-form profit of the modelled cycle
    # against what the signal must clear (gas + minimum net in USD, or the per-token
    # minimum when unpriced), with a margin: PR_SCREEN_PCT % of the bar.
    # the model's optimum (floats: where to look; the exact search below makes the figures)
    r_first, _ = virtual_reserves(pools, rp[0], rz[0])
    cap = r_first * params[PR_MAX_INPUT_BPS] / 10_000.0
    x0, est, curv, all_v2, est_max = model_optimum(pools, tticks, tnets, tn, rp, rz, hops, cap)
    pct = params[PR_SCREEN_PCT]
    if pct > 0:
        est_usd, est_priced = usd_e8_f(pools, tokens, start_pp, est, start_token, stable)
        if est_priced and gas_priced:
            bar = gas_usd + params[PR_MIN_NET_USD_E8]
            skip = bar > 0 and est_usd * 100.0 < bar * float(pct)
        else:
            skip = est * 100.0 < u256_to_f64(min_profit) * float(pct)
        if skip:
            counters[K_SCREENED] += 1
            if slot >= 0:
                _set_dead(sig_vals, rate_cache, slot, cp, hops)
            return pos
    if params[PR_SIGNAL_CRC] != 0 and not CLMUL:
        # the checksum's tables (16 KiB, evicted by the market's state between signals) come in
        # while the exact sizing runs (folded by carry-less multiplication, it reads a few lines)
        _prefetch_span(crc_t, 0, crc_t.shape[0] * 4)
    amount_in, amount_out, found = optimise_input(pools, tticks, tnets, tn, rp, rz, hops, params, counters, x0,
                                                  curv, all_v2, cap, est, est_max, swap_ck, meta[M_STATE_VER])
    if not found:
        counters[K_SIM_FAILS] += 1
        if slot >= 0:
            _set_dead(sig_vals, rate_cache, slot, cp, hops)
        return pos
    gross, _ = u256_sub(amount_out, amount_in)
    gross_usd, priced = usd_e8_at(pools, tokens, start_pp, gross, start_token, stable)
    flags = params[PR_SEARCH_FLAGS]
    if priced and gas_priced:
        net_usd = gross_usd - gas_usd
        due = net_usd >= params[PR_MIN_NET_USD_E8]
    else:
        gross_usd = 0
        gas_usd = 0
        net_usd = 0
        flags |= UNPRICED
        due = u256_cmp(gross, min_profit) > 0
    if not due:
        if slot >= 0:
            _set_dead(sig_vals, rate_cache, slot, cp, hops)
        return pos
    # material change? (the signal's block: the newest state of its pools)
    block = U0
    for i in range(hops):
        if pools[rp[i], C_STATE_BLOCK] > block:
            block = pools[rp[i], C_STATE_BLOCK]
    g_f = u256_to_f64(gross)
    x_f = u256_to_f64(amount_in)
    if slot < 0:
        counters[K_SIGNAL_TABLE_FULL] += 1
    elif sig_keys[slot, 0] != 0 and sig_vals[slot, SV_LIVE] != 0.0:
        # live already: re-publish only a material change, and not more often than the interval
        tol = params[PR_REPUBLISH_BPS] / 10_000.0
        lg = sig_vals[slot, SV_GROSS]
        lx = sig_vals[slot, SV_AMOUNT_IN]
        if abs(g_f - lg) <= tol * lg and abs(x_f - lx) <= tol * lx:
            counters[K_SIGNALS_SUPPRESSED] += 1
            return pos
        gap = params[PR_REPUBLISH_BLOCKS]
        if gap > 0 and float(block) < sig_vals[slot, SV_LAST_BLOCK] + float(gap):
            counters[K_SIGNALS_SUPPRESSED] += 1
            return pos
    if pos + SIG_FRAME > out.shape[0]:
        counters[K_OUT_FULL] += 1
        return pos
    if slot >= 0:
        sig_keys[slot, 0] = k0
        sig_keys[slot, 1] = k1
        sig_keys[slot, 2] = k2
        _set_live(sig_vals, rate_cache, slot, rp, hops)
        sig_vals[slot, SV_GROSS] = g_f
        sig_vals[slot, SV_AMOUNT_IN] = x_f
        sig_vals[slot, SV_LAST_BLOCK] = float(block)
    # write the frame
    rate_r = 1.0
    for i in range(hops):
        rate_r *= _cached_rate(pools, rate_cache, epoch, rp[i], rz[i])
    spread = (rate_r - 1.0) * 10_000.0
    spread_i = np.int64(spread) if abs(spread) < 2e9 else (np.int64(2147483647) if spread > 0 else np.int64(-2147483647))
    # stamped now, as written (the TSC clock of meta; see pool_state.M_CLOCK)
    write_header(out, pos, SIGNAL_DOMAIN, params[PR_SOURCE], 0, seq, fast_ns(meta[M_CLOCK:M_CLOCK + CAL_SIZE]),
                 L.TLV_STD_HEADER + SIG_SIZE)
    v = write_tlv_header(out, pos + HEADER_SIZE, SIG_TYPE, SIG_SIZE)
    for k in range(SIG_SIZE):
        out[v + k] = 0
    _st_u128(out, v + S_AMOUNT_IN, amount_in)
    _st_u128(out, v + S_AMOUNT_OUT, amount_out)
    _st_u128(out, v + S_GAS_WEI, gas_wei)
    st_u64(out, v + S_NET, net_usd)
    st_u64(out, v + S_GROSS, gross_usd)
    st_u64(out, v + S_GAS_USD, gas_usd)
    st_u64(out, v + S_BLOCK, block)
    st_u64(out, v + S_TRIGGER, trigger_ts)
    meta[M_SIGNAL_ID] += 1
    st_u64(out, v + S_ID, meta[M_SIGNAL_ID])
    chain = meta[M_CHAIN_ID] if meta[M_CHAIN_ID] != 0 else params[PR_CHAIN_ID]
    st_u32(out, v + S_CHAIN, chain)
    st_u16(out, v + S_STRATEGY, params[PR_STRATEGY_ID])
    out[v + S_HOPS] = np.uint8(hops)
    out[v + S_FLAGS] = np.uint8(flags)
    for i in range(hops):
        p = rp[i]
        st_u16(out, v + S_VENUES + 2 * i, pools[p, C_VENUE])
        st_u32(out, v + S_FEES + 4 * i, pools[p, C_FEE])
        _st_addr(out, v + S_POOLS + 20 * i, pools[p, C_ADDR], pools[p, C_ADDR + 1], pools[p, C_ADDR + 2])
        t = _token_in(pools, p, rz[i])
        _st_addr(out, v + S_TOKENS + 20 * i, tokens[t, T_ADDR], tokens[t, T_ADDR + 1], tokens[t, T_ADDR + 2])
    st_u32(out, v + S_SPREAD, np.uint64(np.int64(spread_i) & np.int64(0xFFFFFFFF)))
    seal_frame_with(out, pos, params[PR_SIGNAL_CRC] != 0, crc_t)
    counters[K_SIGNALS] += 1
    return pos + SIG_FRAME
