"""The cycle search and the batch entry point.

``search_pool`` enumerates the 2-pool cycles (same pair, other venues) and a
bounded number of 3-pool cycles through one updated pool and evaluates each
(:mod:`.signals`). ``process_batch`` is the one kernel the strategy calls per
batch of market-data frames: validate the frames, apply their TLVs to the pool
state (:mod:`alphapulse.jit.pool_state`), then search the pools each frame (or
each block, ``PR_EVALUATE``) changed, writing signal frames to ``out`` or
publishing them on the sink ring; it can stop and resume (``RS_*`` state).
``process_packed`` is the same with its arrays (``BATCH_ARRAYS``) packed in one
arena.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from alphapulse.jit.arena import view1, view2, view3
from alphapulse.jit.clock import mono_ns
from alphapulse.jit.crc import frame_crc_with
from alphapulse.jit.frames import check_header, check_tlvs, tlv_header
from alphapulse.jit.memory import ld_u32, ld_u64
from alphapulse.jit.pool_state import (
    C_NEXT_PAIR, C_PAIR, C_SOURCES, C_TOKEN0, C_TOKEN1, GP_CHAIN, K_CHAIN_MISMATCH, K_CYCLES, K_FRAMES,
    K_FRAMES_DUPLICATE, K_FRAMES_REJECTED, K_GAP_STALE_POOLS, K_SEQ_GAPS, K_STALE_SKIPS, K_TLVS, M_JSEQ,
    M_LAST_SEQ, M_NPOOLS, M_STATE_VER, P_HEAD, T_GAS, T_HEAD, T_NPOOLS, apply_tlv, find_pair, find_token,
    mark_source_stale, next_pool_of_token, pool_tradable, source_bit,
)
from alphapulse.ring.sequencer import PS_CAP, PS_POS, WAKE, publish_span

from alphapulse.jit.arb.params import (
    BE_BLOCK, BLOCK_END_TYPE, EVAL_FRAME, EV_BURN, EV_BURN_BLOCK, EV_FEE, EV_FEE_BLOCK, EV_MINT, EV_MINT_BLOCK,
    EV_SWAP, EV_SWAP_BLOCK, EV_SYNC, EV_SYNC_BLOCK, FIXED_SIZE, HEADER_SIZE, INTRA_BLOCK, MARKET, OFF_DOMAIN,
    OFF_SEQUENCE, OFF_SOURCE, OFF_TIMESTAMP, PHASE_PAIRS, PHASE_TRIANGLES, PR_CHAIN_ID, PR_CRC_EVERY,
    PR_EVALUATE, PR_HAS_NATIVE, PR_HAS_STABLE, PR_MAX_HOPS, PR_MAX_TRIANGLES, PR_MIN_SPREAD_E9, PR_NATIVE,
    PR_SEARCH_FLAGS, PR_STABLE, RC_LIVE, RC_VALID, RS_BLK_N, RS_BLK_NUMBER, RS_BLK_OVERFLOW, RS_CLOSE, RS_D,
    RS_EPOCH, RS_FINAL, RS_I, RS_LAST_BLOCK, RS_NTOUCHED, RS_OVERFLOW, RS_PENDING, RS_POS, RS_PUB, RS_Q,
    RS_SINK, RS_STOP, SIG_FRAME, STOP_FLUSH,
)
from alphapulse.jit.arb.valuation import _price_moved
from alphapulse.jit.arb.prefetch import _prefetch_span, prefetch_pair_pools
from alphapulse.jit.arb.signals import _cached_rate, _is_candidate, _set_dead, _sig_slot, cycle_key, evaluate_cycle


# The arrays every search kernel reads, as one argument (a kernel's tuple argument is passed as
# its members: grouping costs no call overhead), and the sink ring producer's state.
SearchState = namedtuple("SearchState", (
    "pools tokens pairs pair_ht token_ht tticks tnets tn meta params token_min crc_t swap_ck sig_keys sig_vals "
    "counters rate_cache"))
Sink = namedtuple("Sink", "h ps sizes data")


@njit(cache=True)
def search_pool(st, p, stable, native, trigger_ts, out, pos, out_offsets, n_sig, seq0, epoch, phase, q0, d0,
                stop_each):
    """The 2-pool (phase & PHASE_PAIRS) and bounded 3-pool (phase & PHASE_TRIANGLES) cycles
    through pool p; returns (pos, n_sig, stopped, q, d).

    The 2-pool scan starts at pool ``q0`` of p's pair list, direction ``d0`` (``q0 < 0``: the
    head). With ``stop_each`` it stops after each signal it writes (stopped True) and returns
    where to go on: (q, d), q = -1 when p's pair list is done."""
    (pools, tokens, pairs, pair_ht, _, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck, sig_keys,
     sig_vals, counters, rate_cache) = st
    cp = np.empty(3, np.int64)
    cz = np.empty(3, np.bool_)
    a = np.int64(pools[p, C_TOKEN0])
    b = np.int64(pools[p, C_TOKEN1])
    cap = out_offsets.shape[0]
    # same pair, other venues
    q = -1
    if phase & PHASE_PAIRS:
        if q0 < 0:
            prefetch_pair_pools(pools, tokens, pairs, tticks, tnets, tn, rate_cache, p)
        q = q0 if q0 >= 0 else pairs[np.int64(pools[p, C_PAIR]), P_HEAD]
    d_first = d0
    while q >= 0:
        if q != p and pool_tradable(pools, tn, q):
            for d in range(d_first, 2):
                if n_sig >= cap:
                    return pos, n_sig, False, -1, 0
                cp[0] = p
                cz[0] = d == 0            # p: a -> b when zero_for_one
                cp[1] = q
                # q takes what p gives: token b (=p.token1) when p is zero_for_one
                q_in = b if d == 0 else a
                cz[1] = np.int64(pools[q, C_TOKEN0]) == q_in
                if not _is_candidate(pools, sig_keys, sig_vals, counters, rate_cache, epoch, cp, cz, 2, params):
                    continue
                np_ = evaluate_cycle(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta, params,
                                     token_min, crc_t, swap_ck, sig_keys, sig_vals, counters, cp, cz, 2, stable, native,
                                     trigger_ts, out, pos, seq0 + n_sig, rate_cache, epoch)
                if np_ != pos:
                    out_offsets[n_sig] = pos
                    n_sig += 1
                    pos = np_
                    if stop_each:
                        if d == 0:
                            return pos, n_sig, True, q, 1
                        return pos, n_sig, True, np.int64(pools[q, C_NEXT_PAIR]), 0
        d_first = 0
        q = np.int64(pools[q, C_NEXT_PAIR])
    if params[PR_MAX_HOPS] < 3 or not phase & PHASE_TRIANGLES:
        return pos, n_sig, False, -1, 0
    # Triangles through p: its tokens' common neighbours z. Walk the pool list of whichever of
    # p's tokens has fewer pools (s; the other is o): every pool q of (s, z) with the pools r
    # of (z, o) closes a triangle, run both ways round (o->s->z->o and s->o->z->s).
    budget = params[PR_MAX_TRIANGLES]
    if tokens[a, T_NPOOLS] <= tokens[b, T_NPOOLS]:
        s_tok = a
        o_tok = b
    else:
        s_tok = b
        o_tok = a
    p_s0 = np.int64(pools[p, C_TOKEN0]) == s_tok     # p is zero_for_one when it takes s
    # the screen of _is_candidate written out: each pool's rates are read once, and the signal
    # table is probed only when every pool of the cycle is on some live signal
    bar = 1.0 + params[PR_MIN_SPREAD_E9] * 1e-9
    rate_p_os = _cached_rate(pools, rate_cache, epoch, p, not p_s0)
    rate_p_so = _cached_rate(pools, rate_cache, epoch, p, p_s0)
    live_p = rate_cache[p, RC_LIVE] > 0.0
    q = np.int64(tokens[s_tok, T_HEAD])
    while q >= 0 and budget > 0:
        if q != p and pool_tradable(pools, tn, q):
            q_s0 = np.int64(pools[q, C_TOKEN0]) == s_tok
            zt = np.int64(pools[q, C_TOKEN1]) if q_s0 else np.int64(pools[q, C_TOKEN0])
            if zt != o_tok:
                pr = find_pair(pair_ht, zt, o_tok)
                if pr >= 0:
                    rate_q_sz = _cached_rate(pools, rate_cache, epoch, q, q_s0)
                    rate_q_zs = _cached_rate(pools, rate_cache, epoch, q, not q_s0)
                    live_pq = live_p and rate_cache[q, RC_LIVE] > 0.0
                    r = pairs[pr, P_HEAD]
                    while r >= 0 and budget > 0:
                        if pool_tradable(pools, tn, r):
                            r_z0 = np.int64(pools[r, C_TOKEN0]) == zt
                            rate_r_zo = _cached_rate(pools, rate_cache, epoch, r, r_z0)
                            rate_r_oz = _cached_rate(pools, rate_cache, epoch, r, not r_z0)
                            for d in range(2):
                                if budget <= 0:
                                    break
                                budget -= 1
                                if n_sig >= cap:
                                    return pos, n_sig, False, -1, 0
                                counters[K_CYCLES] += 1
                                if d == 0:      # p: o -> s, q: s -> z, r: z -> o
                                    rate = rate_p_os * rate_q_sz * rate_r_zo
                                else:           # p: s -> o, r: o -> z, q: z -> s
                                    rate = rate_p_so * rate_r_oz * rate_q_zs
                                live = live_pq and rate_cache[r, RC_LIVE] > 0.0
                                if rate <= bar and not live:
                                    continue
                                cp[0] = p
                                if d == 0:
                                    cz[0] = not p_s0
                                    cp[1] = q
                                    cz[1] = q_s0
                                    cp[2] = r
                                    cz[2] = r_z0
                                else:
                                    cz[0] = p_s0
                                    cp[1] = r
                                    cz[1] = not r_z0
                                    cp[2] = q
                                    cz[2] = not q_s0
                                if rate <= bar:         # forget its live signal: its return is published
                                    k0, k1, k2 = cycle_key(cp, cz, 3)
                                    slot = _sig_slot(sig_keys, k0, k1, k2)
                                    if slot >= 0:
                                        _set_dead(sig_vals, rate_cache, slot, cp, 3)
                                    continue
                                np_ = evaluate_cycle(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta,
                                                     params, token_min, crc_t, swap_ck, sig_keys, sig_vals,
                                                     counters, cp, cz, 3, stable, native, trigger_ts, out, pos,
                                                     seq0 + n_sig, rate_cache, epoch)
                                if np_ != pos:
                                    out_offsets[n_sig] = pos
                                    n_sig += 1
                                    pos = np_
                        r = np.int64(pools[r, C_NEXT_PAIR])
        q = next_pool_of_token(pools, q, s_tok)
    return pos, n_sig, False, -1, 0


# ---------------------------------------------------------------- batch entry point
@njit(cache=True)
def _search_touched(st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, phase, i0, q0,
                    d0, stop_each):
    """Search the cycles through every pool changed in ``epoch``, from cursor (i0, q0, d0)
    (see search_pool; (0, -1, 0) from the start); returns (bytes written, signals, stopped,
    cursor i, q, d): with ``stop_each`` it stops after each 2-pool signal, the cursor says
    where to go on."""
    pools, tokens, token_ht, tn, meta, params = st.pools, st.tokens, st.token_ht, st.tn, st.meta, st.params
    counters = st.counters
    stable = -1
    if params[PR_HAS_STABLE] != 0:
        stable = find_token(tokens, token_ht, np.uint64(params[PR_STABLE]), np.uint64(params[PR_STABLE + 1]),
                            np.uint64(params[PR_STABLE + 2]))
    native = -1
    if params[PR_HAS_NATIVE] != 0:
        native = find_token(tokens, token_ht, np.uint64(params[PR_NATIVE]), np.uint64(params[PR_NATIVE + 1]),
                            np.uint64(params[PR_NATIVE + 2]))
    # overflow: more pools changed than the list holds: walk every pool marked in this epoch
    n = meta[M_NPOOLS] if overflow else n_touched
    q_start = q0
    d_start = d0
    for i in range(i0, n):
        p = i if overflow else tl[i]
        if overflow and touched[p, 0] != epoch:
            continue
        if pool_tradable(pools, tn, p):
            wpos, n_sig, stopped, rq, rd = search_pool(st, p, stable, native, np.uint64(touched[p, 1]), out, wpos,
                                                       out_offsets, n_sig, seq0, float(epoch), phase, q_start,
                                                       d_start, stop_each)
            if stopped:
                if rq < 0:
                    return wpos, n_sig, True, i + 1, -1, 0
                return wpos, n_sig, True, i, rq, rd
        elif phase & PHASE_PAIRS:
            counters[K_STALE_SKIPS] += 1
        q_start = -1
        d_start = 0
    return wpos, n_sig, False, n, -1, 0


@njit(cache=True)
def _sink_publish(out, wpos, resume, sink):
    """Publish ``out[resume[RS_PUB]:wpos]`` on the sink ring (the caller's ring producer state).

    True when all of it is on the ring and no consumer needs waking; otherwise the
    publication the kernel cannot finish (a futex wake, a full lossless ring, an error)
    is left in resume[RS_SINK] for the caller, and what did go out in resume[RS_PUB].
    """
    pub = resume[RS_PUB]
    if sink.ps.shape[0] == 0 or wpos <= pub:
        return True
    r = publish_span(sink.h, sink.ps, sink.sizes, sink.data, out, pub, wpos - pub, mono_ns())
    if r < 0:
        resume[RS_SINK] = r
        return False
    done = r - WAKE if r >= WAKE else r
    resume[RS_PUB] = pub + done
    if r >= WAKE or pub + done < wpos:
        resume[RS_SINK] = r if r > 0 else WAKE - 1    # WAKE - 1: nothing went out (ring full)
        return False
    return True


@njit(cache=True)
def _search_epoch(st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, i0, q0, d0,
                  flush_pairs, split, resume, sink):
    """One search: the 2-pool cycles from cursor (i0, q0, d0), then, unless that stopped on a
    flush, the triangles (when ``split``). Returns what _search_touched returns for the pairs.

    With a sink ring (``sink_ps`` not empty) a flush publishes the new signal on it right here
    and the search goes on; it stops (for the caller to finish the publication) only when
    the ring needs a futex wake, is full, or refuses. The triangle signals go out after
    their search.
    """
    if sink.ps.shape[0] != 0:
        # where the sink ring's next frames go (their lines last written a lap ago: cold); the
        # position moves only with a publication, so a frame without signals finds them cached
        off = sink.ps[PS_POS] % sink.ps[PS_CAP]
        if off + 2 * SIG_FRAME <= sink.data.shape[0]:
            _prefetch_span(sink.data, off, 2 * SIG_FRAME)
    while True:
        wpos, n_sig, stopped, ci, cq, cd = _search_touched(
            st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, PHASE_PAIRS, i0, q0,
            d0, flush_pairs)
        if not stopped or sink.ps.shape[0] == 0:
            break
        if not _sink_publish(out, wpos, resume, sink):
            return wpos, n_sig, True, ci, cq, cd
        i0 = ci
        q0 = cq
        d0 = cd
    if split and not stopped:
        wpos, n_sig, _, _, _, _ = _search_touched(
            st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, PHASE_TRIANGLES, 0, -1,
            0, False)
    if not stopped and sink.ps.shape[0] != 0 and resume[RS_SINK] == 0:
        _sink_publish(out, wpos, resume, sink)
    return wpos, n_sig, stopped, ci, cq, cd


@njit(cache=True)
def process_batch(buf, n_bytes, arrays, seq0, sink, flush_pairs):
    """Apply the market-data frames in ``buf[:n_bytes]``, then search cycles through changed pools.

    ``arrays`` a :data:`BatchArrays` (the strategy's state and scratch, see BATCH_ARRAYS), ``sink``
    a :data:`Sink`; of the arrays:

    ``touched`` int64[P, 2] scratch (epoch mark, trigger timestamp); ``tl`` int64[T] scratch
    (the changed pools of the search in progress);
    ``rate_cache`` float64[P, RCCOL] per-pool scratch, zeroed once by the owner and kept
    across batches (marginal rates of the pool's current state, live signal count);
    ``crc_state`` int64[>= 3]: [sampling phase, verified count, batch epoch];
    ``crc_t`` the checksum's tables (``alphapulse.jit.crc.TABLE``) that signal frames are sealed
    and sampled market frames checked with, an array of the caller's so that the kernel can prefetch them.
    ``swap_ck`` uint64[SWC_N, SWCOL] the search's cache of V3 swap checkpoints (zeroed by the owner).
    Each search runs the 2-pool cycles of every changed pool first, then the triangles.
    With ``flush_pairs`` true the call returns after each 2-pool signal it writes (stop
    reason STOP_FLUSH), so that the caller publishes every one as soon as it is sized, before
    the other cycles of the search and its triangles; calling again with the same ``buf`` and
    ``resume`` (int64[RSCOL], zeroed by the owner) carries on where it stopped.
    ``sink`` (h, ps, sizes, data): a ring producer's header, private state,
    size index and data area (:meth:`alphapulse.ring.Producer.kernel_state`; empty arrays:
    none). With a sink the kernel publishes the signals on that ring itself, each 2-pool
    signal as soon as it is sized, and returns early only for what it cannot finish there
    (resume[RS_SINK]: a futex wake, a full lossless ring); ``out[:resume[RS_PUB]]`` is then
    on the ring and the caller publishes the rest (both words are zeroed on entry).
    Signal frames are written back to back into ``out``; ``out_offsets``
    receives each frame's offset. ``seq0`` is the sequence of the first
    signal frame. Returns (n_signals, bytes written, frames consumed, stop
    reason: 0 all consumed, STOP_FLUSH, else the Reject code of a corrupt header).
    """
    (pools, tokens, pairs, pool_ht, token_ht, pair_ht, tticks, tnets, tgross, tn, journal, meta, counters, venue_fee,
     params, token_min, sig_keys, sig_vals, touched, crc_state, out, out_offsets, rate_cache, tl, resume, crc_t,
     swap_ck) = arrays
    st = SearchState(pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t,
                     swap_ck, sig_keys, sig_vals, counters, rate_cache)
    resume[RS_PUB] = 0
    resume[RS_SINK] = 0
    each_frame = params[PR_EVALUATE] == EVAL_FRAME
    split = params[PR_MAX_HOPS] >= 3
    wpos = 0
    n_sig = 0
    n_frames = 0
    stop = 0
    end = min(n_bytes, buf.shape[0])
    if resume[RS_PENDING] != 0:
        # the rest of the search a flush interrupted: its 2-pool cycles from the cursor, its triangles
        resume[RS_PENDING] = 0
        epoch = resume[RS_EPOCH]
        n_touched = resume[RS_NTOUCHED]
        overflow = resume[RS_OVERFLOW] != 0
        pos = resume[RS_POS]
        final = resume[RS_FINAL] != 0
        wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
            st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, resume[RS_I],
            resume[RS_Q], resume[RS_D], flush_pairs, split, resume, sink)
        if stopped:
            _save_resume(resume, pos, epoch, n_touched, overflow, final, resume[RS_STOP], ci, cq, cd)
            return n_sig, wpos, 0, STOP_FLUSH
        if final:
            return n_sig, wpos, 0, resume[RS_STOP]
    else:
        pos = 0
    if resume[RS_BLK_N] > 0 or resume[RS_BLK_OVERFLOW] != 0:
        # the block in progress goes on: its changed pools are those of its epoch
        epoch = crc_state[2]
        n_touched = resume[RS_BLK_N]
        overflow = resume[RS_BLK_OVERFLOW] != 0
    else:
        crc_state[2] += 1
        epoch = crc_state[2]
        n_touched = 0
        overflow = False
    crc_every = params[PR_CRC_EVERY]
    stable = -1                     # the stable coin's token row, looked up when a pool changes
    jrow_b = journal.shape[1] * 8
    while pos < end:
        if not each_frame and (n_touched > 0 or overflow):
            # a pool event of another block ends the block in progress (input without BlockEnd):
            # search it before this frame changes anything
            bn = _frame_block(buf, pos, end)
            if bn != 0 and bn != resume[RS_BLK_NUMBER]:
                resume[RS_BLK_N] = 0
                resume[RS_BLK_OVERFLOW] = 0
                resume[RS_LAST_BLOCK] = resume[RS_BLK_NUMBER]
                params[PR_SEARCH_FLAGS] = 0
                wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
                    st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, 0, -1, 0,
                    flush_pairs, split, resume, sink)
                crc_state[2] += 1
                if stopped:
                    # the frame at ``pos`` is not applied yet: the call that finishes the search
                    # goes on with it
                    _save_resume(resume, pos, epoch, n_touched, overflow, False, 0, ci, cq, cd)
                    return n_sig, wpos, n_frames, STOP_FLUSH
                epoch = crc_state[2]
                n_touched = 0
                overflow = False
        # the journal entry the next event fills (a ring far larger than the caches: always cold)
        _prefetch_span(journal, (meta[M_JSEQ] % journal.shape[0]) * jrow_b, jrow_b)
        reason, psize = check_header(buf, pos, end - pos)
        if reason != 0:
            counters[K_FRAMES_REJECTED] += 1
            stop = reason
            break
        pend = pos + HEADER_SIZE + psize
        fpos = pos
        pos = pend
        n_frames += 1
        counters[K_FRAMES] += 1
        if check_tlvs(buf, fpos + HEADER_SIZE, pend) != 0:
            counters[K_FRAMES_REJECTED] += 1
            continue
        ck = ld_u32(buf, fpos + 28)
        verified = False
        if crc_every > 0 and ck != np.uint64(0):
            if crc_state[0] % crc_every == 0:
                crc_state[1] += 1
                if frame_crc_with(buf, fpos, psize, crc_t) != ck:
                    crc_state[0] += 1
                    counters[K_FRAMES_REJECTED] += 1
                    continue
                verified = True
            crc_state[0] += 1
        if buf[fpos + OFF_DOMAIN] != MARKET:
            continue
        src = np.int64(buf[fpos + OFF_SOURCE])
        seq = np.int64(ld_u64(buf, fpos + OFF_SEQUENCE))
        last = meta[M_LAST_SEQ + src]
        if last != 0 and seq != last + 1:
            # a gap or duplicate is decided on a frame whose checksum holds: a flipped bit in the
            # sequence of a frame outside the sample must not drop the stream behind it
            if not verified and ck != np.uint64(0) and frame_crc_with(buf, fpos, psize, crc_t) != ck:
                counters[K_FRAMES_REJECTED] += 1
                continue
            if seq <= last:
                if seq == 1:
                    # the producer restarted: whatever it sent before may be incomplete
                    counters[K_GAP_STALE_POOLS] += mark_source_stale(pools, meta, src)
                    counters[K_SEQ_GAPS] += 1
                else:
                    counters[K_FRAMES_DUPLICATE] += 1
                    continue
            else:
                # the lost frames were this source's: only the pools it feeds could have changed
                counters[K_GAP_STALE_POOLS] += mark_source_stale(pools, meta, src)
                counters[K_SEQ_GAPS] += 1
        meta[M_LAST_SEQ + src] = seq
        ts = ld_u64(buf, fpos + OFF_TIMESTAMP)
        block_end = False
        p = fpos + HEADER_SIZE
        while p < pend:
            t, length, v, _ = tlv_header(buf, p, pend)    # the structure was checked above
            p = v + length
            counters[K_TLVS] += 1
            if t == BLOCK_END_TYPE:
                # every event of this block has been sent: its end state is the one to search
                block_end = True
                resume[RS_LAST_BLOCK] = np.int64(ld_u64(buf, v + BE_BLOCK))
                continue
            if t == T_GAS and params[PR_CHAIN_ID] != 0 and np.int64(ld_u32(buf, v + GP_CHAIN)) != params[PR_CHAIN_ID]:
                counters[K_CHAIN_MISMATCH] += 1     # the signals carry the frames' chain id
            bn = _event_block(buf, t, v)
            if bn != 0:
                resume[RS_BLK_NUMBER] = bn
            meta[M_STATE_VER] += 1      # whatever it changes, caches of the old state are void
            if FIXED_SIZE[t] != 0:
                changed = apply_tlv(buf, t, v, pools, tokens, pairs, pool_ht, token_ht, pair_ht, tticks,
                                    tnets, tgross, tn, journal, meta, counters, venue_fee)
                if changed >= 0:
                    pools[changed, C_SOURCES] |= source_bit(src)
                    rate_cache[changed, RC_VALID] = 0.0     # its marginal rates are recomputed on use
                    if stable < 0 and params[PR_HAS_STABLE] != 0:
                        stable = find_token(tokens, token_ht, np.uint64(params[PR_STABLE]),
                                            np.uint64(params[PR_STABLE + 1]), np.uint64(params[PR_STABLE + 2]))
                    if stable >= 0:
                        _price_moved(pools, tokens, meta, changed, stable)
                    if touched[changed, 0] != epoch:
                        touched[changed, 0] = epoch
                        if n_touched < tl.shape[0]:
                            tl[n_touched] = changed
                            n_touched += 1
                        else:
                            overflow = True
                    touched[changed, 1] = np.int64(ts)
        if (each_frame or block_end) and (n_touched > 0 or overflow):
            # frame mode prices every state; one that a later event of its block may still
            # change (no BlockEnd yet) is flagged intra-block
            params[PR_SEARCH_FLAGS] = 0 if block_end else INTRA_BLOCK
            resume[RS_BLK_N] = 0
            resume[RS_BLK_OVERFLOW] = 0
            wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
                st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, 0, -1, 0,
                flush_pairs, split, resume, sink)
            crc_state[2] += 1           # a new epoch: the next frame's changes start a fresh list
            if stopped:
                _save_resume(resume, pos, epoch, n_touched, overflow, False, 0, ci, cq, cd)
                return n_sig, wpos, n_frames, STOP_FLUSH
            epoch = crc_state[2]
            n_touched = 0
            overflow = False
    if (n_touched > 0 or overflow) and resume[RS_CLOSE] != 0:
        # the end of the input ends its last block
        resume[RS_CLOSE] = 0
        resume[RS_BLK_N] = 0
        resume[RS_BLK_OVERFLOW] = 0
        resume[RS_LAST_BLOCK] = resume[RS_BLK_NUMBER]
        params[PR_SEARCH_FLAGS] = 0
        wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
            st, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig, seq0, 0, -1, 0,
            flush_pairs, split, resume, sink)
        crc_state[2] += 1
        if stopped:
            _save_resume(resume, pos, epoch, n_touched, overflow, True, stop, ci, cq, cd)
            return n_sig, wpos, n_frames, STOP_FLUSH
        return n_sig, wpos, n_frames, stop
    resume[RS_CLOSE] = 0
    # the block goes on in the next call
    resume[RS_BLK_N] = n_touched
    resume[RS_BLK_OVERFLOW] = 1 if overflow else 0
    return n_sig, wpos, n_frames, stop


@njit(cache=True, inline="always")
def _event_block(buf, t, v):
    """block_number of a pool event TLV (type ``t``, value at ``buf[v]``); 0 for other types."""
    if t == EV_SWAP:
        return np.int64(ld_u64(buf, v + EV_SWAP_BLOCK))
    if t == EV_SYNC:
        return np.int64(ld_u64(buf, v + EV_SYNC_BLOCK))
    if t == EV_MINT:
        return np.int64(ld_u64(buf, v + EV_MINT_BLOCK))
    if t == EV_BURN:
        return np.int64(ld_u64(buf, v + EV_BURN_BLOCK))
    if t == EV_FEE:
        return np.int64(ld_u64(buf, v + EV_FEE_BLOCK))
    return np.int64(0)


@njit(cache=True)
def _frame_block(buf, pos, end):
    """block_number of the first pool event in the market-data frame at ``buf[pos]``; 0 when it
    has none or is not a well-formed market-data frame (the caller rejects that one itself)."""
    reason, psize = check_header(buf, pos, end - pos)
    if reason != 0 or buf[pos + OFF_DOMAIN] != MARKET:
        return np.int64(0)
    pend = pos + HEADER_SIZE + psize
    if check_tlvs(buf, pos + HEADER_SIZE, pend) != 0:
        return np.int64(0)
    p = pos + HEADER_SIZE
    while p < pend:
        t, length, v, _ = tlv_header(buf, p, pend)
        p = v + length
        bn = _event_block(buf, t, v)
        if bn != 0:
            return bn
    return np.int64(0)


# process_batch's arrays (the fields of BatchArrays), in order: (name, dtype, ndim). The engine
# packs them into one arena (alphapulse.jit.arena) in this order; process_packed unpacks them.
BATCH_ARRAYS = (
    ("pools", np.uint64, 2), ("tokens", np.uint64, 2), ("pairs", np.int64, 2), ("pool_ht", np.int64, 1),
    ("token_ht", np.int64, 1), ("pair_ht", np.int64, 2), ("tticks", np.int32, 2), ("tnets", np.uint64, 3),
    ("tgross", np.uint64, 3), ("tn", np.int64, 1), ("journal", np.uint64, 2), ("meta", np.int64, 1),
    ("counters", np.int64, 1), ("venue_fee", np.int64, 1), ("params", np.int64, 1), ("token_min", np.uint64, 2),
    ("sig_keys", np.int64, 2), ("sig_vals", np.float64, 2), ("touched", np.int64, 2), ("crc_state", np.int64, 1),
    ("out", np.uint8, 1), ("out_offsets", np.int64, 1), ("rate_cache", np.float64, 2), ("tl", np.int64, 1),
    ("resume", np.int64, 1), ("crc_t", np.uint32, 1), ("swap_ck", np.uint64, 2),
)
BatchArrays = namedtuple("BatchArrays", [name for name, _, _ in BATCH_ARRAYS])


@njit(cache=True)
def process_packed(buf, n_bytes, arena, lay, seq0, sink_h, sink_ps, sink_sizes, sink_data, flush_pairs):
    """:func:`process_batch` with its arrays (BATCH_ARRAYS) packed in one ``arena``
    (:func:`alphapulse.jit.arena.pack`): the per-frame call from Python unboxes 7 arrays instead
    of 32, and the kernel's arrays carry no reference count (see that module)."""
    u64, i64 = np.uint64, np.int64
    arrays = BatchArrays(
        view2(arena, lay, 0, u64), view2(arena, lay, 1, u64), view2(arena, lay, 2, i64),      # pools tokens pairs
        view1(arena, lay, 3, i64), view1(arena, lay, 4, i64), view2(arena, lay, 5, i64),      # the hash tables
        view2(arena, lay, 6, np.int32), view3(arena, lay, 7, u64), view3(arena, lay, 8, u64),  # ticks
        view1(arena, lay, 9, i64), view2(arena, lay, 10, u64), view1(arena, lay, 11, i64),    # tn journal meta
        view1(arena, lay, 12, i64), view1(arena, lay, 13, i64), view1(arena, lay, 14, i64),   # counters .. params
        view2(arena, lay, 15, u64), view2(arena, lay, 16, i64), view2(arena, lay, 17, np.float64),
        view2(arena, lay, 18, i64), view1(arena, lay, 19, i64), view1(arena, lay, 20, np.uint8),
        view1(arena, lay, 21, i64), view2(arena, lay, 22, np.float64), view1(arena, lay, 23, i64),
        view1(arena, lay, 24, i64), view1(arena, lay, 25, np.uint32), view2(arena, lay, 26, u64))
    return process_batch(buf, n_bytes, arrays, seq0, Sink(sink_h, sink_ps, sink_sizes, sink_data), flush_pairs)


@njit(cache=True)
def _save_resume(resume, pos, epoch, n_touched, overflow, final, stop, ci, cq, cd):
    """Where the interrupted 2-pool phase goes on (cursor ci, cq, cd), then its triangles."""
    resume[RS_PENDING] = 1
    resume[RS_I] = ci
    resume[RS_Q] = cq
    resume[RS_D] = cd
    resume[RS_POS] = pos
    resume[RS_EPOCH] = epoch
    resume[RS_NTOUCHED] = n_touched
    resume[RS_OVERFLOW] = 1 if overflow else 0
    resume[RS_FINAL] = 1 if final else 0
    resume[RS_STOP] = stop
