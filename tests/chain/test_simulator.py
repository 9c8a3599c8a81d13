"""The market simulator is deterministic for a seed, produces every kind of pool event, and
opens and closes arbitrage gaps between venues."""
from fractions import Fraction

import pytest

from alphapulse.chain.simulator import (ACTION_KINDS, MarketSimulator, SimulatorConfig, _shared_pairs, fee_gaps,
                                        price_gaps)

STEPS = 15


def _events(market, first: int, last: int) -> list[tuple]:
    """Every log the market's pools emitted in [first, last], without block hashes/timestamps."""
    logs = market.w3.eth.get_logs({"fromBlock": first, "toBlock": last, "address": [p.address for p in market.pools]})
    return [(lg["blockNumber"] - first, lg["logIndex"], lg["address"], tuple(bytes(t) for t in lg["topics"]), bytes(lg["data"]))
            for lg in logs]


def _run(market, seed: int):
    sim = MarketSimulator(market, SimulatorConfig(seed=seed, txs_per_block=6))
    report = sim.run(STEPS)
    return report, _events(market, report.first_block, report.last_block)


def test_same_seed_same_events_and_other_seed_differs(market, anvil):
    snap = anvil.snapshot()
    rep1, ev1 = _run(market, seed=7)
    anvil.revert(snap)
    snap = anvil.snapshot()
    rep2, ev2 = _run(market.fork(), seed=7)
    anvil.revert(snap)
    rep3, ev3 = _run(market.fork(), seed=8)
    assert len(rep1.blocks) == STEPS and rep1.txs >= STEPS * 6 and rep1.reverted == 0
    assert len(ev1) >= STEPS * 6
    assert ev1 == ev2
    assert [a for b in rep1.blocks for a in b.actions] == [a for b in rep2.blocks for a in b.actions]
    assert ev3 != ev1


def test_batches_many_transactions_per_block(market):
    report = MarketSimulator(market, SimulatorConfig(seed=3, txs_per_block=10)).run(3)
    for block in report.blocks:
        n = len(market.w3.eth.get_block(block.block_number)["transactions"])
        assert n == block.txs >= 10
    assert report.reverted == 0


def test_produces_swap_sync_mint_and_burn_events_on_both_pool_kinds(market):
    weights = (("swap", 0.4), ("shock", 0.1), ("arb", 0.1), ("add_v2", 0.1), ("remove_v2", 0.1),
               ("add_v3", 0.1), ("remove_v3", 0.1))
    report = MarketSimulator(market, SimulatorConfig(seed=11, txs_per_block=10, weights=weights)).run(8)
    for kind in ACTION_KINDS:
        assert report.count(kind) > 0, kind
    assert report.reverted == 0
    v2 = market.contract("UniswapV2Pair", market.pools[0].address).events
    v3 = market.contract("UniswapV3Pool", market.pools[2].address).events
    topics = {bytes(lg["topics"][0]) for lg in market.w3.eth.get_logs(
        {"fromBlock": report.first_block, "toBlock": report.last_block, "address": [p.address for p in market.pools]})}
    for ev in (v2.Swap, v2.Sync, v2.Mint, v2.Burn, v3.Swap, v3.Mint, v3.Burn):
        assert bytes.fromhex(ev.topic.removeprefix("0x")) in topics, ev.event_name


def test_opens_and_closes_arbitrage_gaps(market):
    # shocks only: gaps open
    shock = MarketSimulator(market, SimulatorConfig(seed=5, txs_per_block=4, weights=(("shock", 1.0),)))
    shock.run(3)
    opened = max(price_gaps(market).values())
    assert opened > Fraction(1006, 1000)      # beyond two 0.3% fees: a profitable cycle exists
    # arbitrage only: the gaps close again
    arb = MarketSimulator(market, SimulatorConfig(seed=5, txs_per_block=8, weights=(("arb", 1.0),)))
    arb.run(12)
    assert max(price_gaps(market).values()) < 1 + (opened - 1) / 3


def test_stop_ends_a_run_early(market):
    sim = MarketSimulator(market, SimulatorConfig(seed=1, txs_per_block=2))
    report = sim.run(1000, on_block=lambda b: sim.stop() if b.block_number else None)
    assert len(report.blocks) == 1


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown action"):
        SimulatorConfig(weights=(("teleport", 1.0),))
    with pytest.raises(ValueError):
        SimulatorConfig(txs_per_block=0)


def test_fixed_genesis_and_block_interval_make_the_whole_chain_reproducible(anvil_factory):
    """What a bundled recording needs: same seed -> the same blocks, hash for hash."""
    from alphapulse.chain.deploy import DEFAULT_PAIRS, DEFAULT_TOKENS, MarketSpec, deploy_market
    small = MarketSpec(tokens=DEFAULT_TOKENS[:3], pairs=DEFAULT_PAIRS[:3], traders=MarketSpec.traders[:2])
    heads = []
    for _ in range(2):
        node = anvil_factory(genesis_timestamp=1_767_225_600)
        node.set_block_timestamp_interval(2)
        MarketSimulator(deploy_market(node.http_url, small), SimulatorConfig(seed=3, txs_per_block=5)).run(5)
        heads.append([node.rpc("eth_getBlockByNumber", [hex(n), False])["hash"] for n in range(node.block_number() + 1)])
        assert int(node.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) == 1_767_225_600 + 2 * node.block_number()
        node.stop()
    assert heads[0] == heads[1] and len(heads[0]) > 10


def test_block_interval_paces_the_run(market):
    import time
    sim = MarketSimulator(market, SimulatorConfig(seed=2, txs_per_block=1, block_interval_s=0.1))
    t = time.monotonic()
    report = sim.run(4)
    assert time.monotonic() - t >= 0.3     # pacing is a lower bound: 3 waits between 4 blocks
    assert len(report.blocks) == 4


def test_duration_bounds_an_open_ended_run(market):
    sim = MarketSimulator(market, SimulatorConfig(seed=2, txs_per_block=1, block_interval_s=0.05))
    report = sim.run(duration_s=0.3)
    assert 1 <= len(report.blocks) <= 8


def test_a_v2_only_market_still_simulates_every_applicable_action(anvil_factory):
    from alphapulse.chain.deploy import DEFAULT_TOKENS, MarketSpec, PairSpec, deploy_market
    node = anvil_factory()
    spec = MarketSpec(tokens=DEFAULT_TOKENS[:2], pairs=(PairSpec("WMATIC", "USDC", v3_fees=()),))
    market = deploy_market(node.http_url, spec)
    report = MarketSimulator(market, SimulatorConfig(seed=4, txs_per_block=8)).run(4)
    assert report.count("add_v3") == report.count("remove_v3") == 0   # fell back to swaps
    assert report.count("swap") > 0 and report.reverted == 0


def test_command_line_runs_a_market_and_stops_on_sigterm(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path
    proc = subprocess.Popen([sys.executable, "-m", "alphapulse.chain", "--block-interval", "0.05",
                             "--market-json", str(tmp_path / "m.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        info = json.loads(proc.stdout.readline())
        assert info["ws_url"].startswith("ws://127.0.0.1:") and info["chain_id"] == 137
        assert json.loads((tmp_path / "m.json").read_text())["market"] == info["market"]
        from alphapulse.chain.deploy import Market
        market = Market.from_dict(info["http_url"], info["market"])
        first = market.w3.eth.block_number
        for line in proc.stderr:          # the simulator is mining
            if line.startswith("block "):
                break
        assert market.w3.eth.block_number > first
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        import requests
        with pytest.raises(requests.exceptions.ConnectionError):   # its anvil is gone too
            requests.post(info["http_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_base_fee_walks_around_the_configured_level(market):
    cfg = SimulatorConfig(seed=9, txs_per_block=2, base_fee_gwei=40.0, base_fee_step=0.1)
    report = MarketSimulator(market, cfg).run(12)
    fees = [market.w3.eth.get_block(b.block_number)["baseFeePerGas"] for b in report.blocks]
    assert all(10 * 10**9 <= f <= 160 * 10**9 for f in fees)
    assert len(set(fees)) == len(fees)                  # it moves every block
    assert all(abs(b / a - 1) <= 0.1 + 1e-9 for a, b in zip(fees, fees[1:]))


def test_report_keeps_totals_and_only_recent_blocks():
    from alphapulse.chain.simulator import Action, BlockReport, SimulationReport
    report = SimulationReport(keep=3)
    for n in range(10, 15):
        report.add(BlockReport(n, [Action("swap", "p", "s", "", 1), Action("arb", "p", "s", "", 1)], 2, n % 2))
    assert [b.block_number for b in report.blocks] == [12, 13, 14]
    assert (report.n_blocks, report.txs, report.reverted, report.first_block, report.last_block) == (5, 10, 2, 10, 14)
    assert report.count("swap") == report.count("arb") == 5 and report.count("shock") == 0


def test_reference_prices_walk_by_token_volatility_and_the_pools_follow(market):
    cfg = SimulatorConfig(seed=4, txs_per_block=2, weights=(("swap", 1.0),))
    sim = MarketSimulator(market, cfg)
    path = [dict(sim.reference)]
    sim.run(30, on_block=lambda _b: path.append(dict(sim.reference)))
    vol = dict(cfg.volatility_bps)
    for sym, t in market.tokens.items():     # realised per-block volatility near the configured one
        steps = [b[t.address] / a[t.address] - 1 for a, b in zip(path, path[1:])]
        realised = (sum(x * x for x in steps) / len(steps)) ** 0.5 * 10_000
        assert 0.6 * vol[sym] <= realised <= 1.4 * vol[sym], (sym, realised)
    assert vol["USDT"] < vol["WBTC"] / 10 and vol["USDC"] == 0
    for p in market.pools:            # arbitrageurs keep every pool near its reference
        assert abs(market.price(p) / sim.reference_price(p) - 1) < Fraction(1, 100), p.label


def test_arbitrageurs_close_a_shock_after_their_latency(market):
    sim = MarketSimulator(market, SimulatorConfig(seed=6, txs_per_block=1, weights=(("shock", 1.0),),
                                                  shock_bps_min=250, shock_bps_max=300, arb_latency_blocks=(2, 2)))
    sim.step()                                  # one shock
    assert max(fee_gaps(market).values()) > 0
    quiet = MarketSimulator(market, SimulatorConfig(seed=6, txs_per_block=1, weights=(("add_v2", 1.0),),
                                                    arb_latency_blocks=(2, 2)))
    quiet.reference = sim.reference
    quiet.step()                                # seen now, traded one block later
    assert max(fee_gaps(market).values()) > 0
    quiet.step()
    assert max(fee_gaps(market).values()) <= 0


def test_a_shock_while_a_pair_is_disturbed_does_not_extend_its_gap(market):
    """The arbitrageurs' latency runs from the pair's first disturbance: a second shock on the
    pair while it is open is taken back with the first, not after a latency of its own."""
    quiet = MarketSimulator(market, SimulatorConfig(seed=6, txs_per_block=1, weights=(("add_v2", 1.0),),
                                                    arb_latency_blocks=(3, 3)))
    key, (a, b) = next((k, ps[:2]) for k, ps in _shared_pairs(market).items())

    def shock(pool):
        market.sender.batch([quiet._move_tx(pool, Fraction(10_300, 10_000), market.traders[0])])
    shock(a)                                    # the pair is disturbed
    assert fee_gaps(market)[key] > 0
    quiet.step()                                # seen: the arbitrageurs trade in the third step
    shock(b)                                    # a second shock on the open pair
    quiet.step()
    assert fee_gaps(market)[key] > 0
    quiet.step()                                # both pools back at once: the gap is closed
    assert fee_gaps(market)[key] <= 0, [float(market.price(p) / quiet.reference_price(p)) for p in (a, b)]
