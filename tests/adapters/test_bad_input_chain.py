"""Bad input from a real node: malformed logs, a non-pool emitting pool topics, a token whose
decimals() reverts, an endpoint that refuses connections. Counted, logged, survived."""
from eth_abi import encode

from alphapulse.adapters.evm import abi
from alphapulse.chain.anvil import free_port
from alphapulse.chain.artifacts import load_artifact
from alphapulse.protocol import codec

from .chain_helpers import adapter_config, addr, chain_log_keys, net_event_keys

# Runtime: LOG1(topic0 = calldata[0:32], data = calldata[32:]). Any other calldata (a 4-byte
# selector such as token0()) underflows the length and reverts: it is not a pool.
_RUNTIME = "602036036020600037600035602036036000a100"
EMITTER_INIT = "0x6014600c60003960146000f3" + _RUNTIME


def _send(w3, frm, to, data, value=0):
    h = w3.eth.send_transaction({"from": frm, "to": to, "data": data, "gas": 3_000_000, "value": value})
    rc = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.005)
    assert rc["status"] == 1
    return rc


def test_bad_input_is_counted_and_survived(anvil, market, adapter_run, caplog):
    m = market
    w3 = m.w3
    me = m.traders[0]
    refused = f"ws://127.0.0.1:{free_port()}"        # nothing listens there
    run = adapter_run(adapter_config(m, (refused, anvil.ws_url)))
    run.wait_connected()
    b0 = anvil.block_number()
    assert run.counters["connect_failures"] >= 1 and run.client.endpoint == anvil.ws_url

    emitter = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": me, "data": EMITTER_INIT, "gas": 200_000}))["contractAddress"]
    assert w3.eth.get_code(emitter).hex().endswith(_RUNTIME)
    # malformed: Sync with 3 bytes of data; V3 Swap with one topic instead of three
    _send(w3, me, emitter, abi.V2_SYNC.topic0_hex + "010203")
    _send(w3, me, emitter, abi.V3_SWAP.topic0_hex + encode(["int256"] * 5, [1, -1, 2**96, 1, 0]).hex())
    # well-formed Sync from a contract that is no pool: discovery fails, the address is ignored
    _send(w3, me, emitter, abi.V2_SYNC.topic0_hex + encode(["uint112", "uint112"], [5, 6]).hex())
    _send(w3, me, emitter, abi.V2_SYNC.topic0_hex + encode(["uint112", "uint112"], [7, 8]).hex())

    # a pair on a followed factory whose token's decimals() reverts
    art = load_artifact("RevertingDecimalsToken")
    C = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    bad = w3.eth.wait_for_transaction_receipt(
        C.constructor("Bad", "BAD").transact({"from": me}))["contractAddress"]
    bad_c = w3.eth.contract(address=bad, abi=art.abi)
    usdc = m.token("USDC")
    fac = w3.eth.contract(address=m.v2_factories[400], abi=load_artifact("UniswapV2Factory").abi)
    _send(w3, me, fac.address, fac.encode_abi("createPair", [bad, usdc.address]))
    pair = fac.functions.getPair(bad, usdc.address).call()
    pair_c = w3.eth.contract(address=pair, abi=load_artifact("UniswapV2Pair").abi)
    _send(w3, me, bad, bad_c.encode_abi("mint", [me, 10**24]))
    _send(w3, me, bad, bad_c.encode_abi("transfer", [pair, 10**21]))
    usdc_c = m.erc20("USDC")
    _send(w3, me, usdc.address, usdc_c.encode_abi("transfer", [pair, 10**9]))
    _send(w3, me, pair, pair_c.encode_abi("mint", [me]))               # Mint + Sync
    _send(w3, me, bad, bad_c.encode_abi("transfer", [pair, 10**18]))
    _send(w3, me, pair, pair_c.encode_abi("sync", []))                 # another Sync, no rediscovery

    # good data keeps flowing and is exact
    p = m.v2_pool("WMATIC", "USDC", 400)
    res = m.swap(p, p.token0, 10**18)
    b1 = anvil.block_number()
    run.wait_head(b1)
    run.stop()
    c = run.counters
    assert c["decode_error_bad_data_length"] == 1
    assert c["decode_error_bad_topic_count"] == 1
    assert c["ignored_not_a_pool"] == 1                 # the emitter, once
    assert c["ignored_token"] == 1 and c["ignored_pool_bad_token"] == 1
    assert c["skipped_ignored_pool"] == 2 + 2 + 1       # emitter: 2 Syncs; bad pair: Mint+Sync held, then Sync
    assert c["discoveries"] == 3                        # emitter, bad pair, the good pool
    ignored = run.client.provider.ignored
    assert ignored[addr(bad)][0] == "token" and "decimals()" in ignored[addr(bad)][1]
    assert ignored[addr(pair)][0] == "pool_bad_token"
    assert any("not an ERC-20" in r.getMessage() for r in caplog.records)
    assert any("undecodable log" in r.getMessage() for r in caplog.records)
    recs = run.records()
    swaps = [r for r in recs if isinstance(r, codec.PoolSwap)]
    assert len(swaps) == 1 and (swaps[0].amount_in, swaps[0].amount_out) == (res.amount_in, res.amount_out)
    assert net_event_keys(recs) == chain_log_keys(w3, b0 + 1, b1, {addr(p.address)})
    assert not any(getattr(r, "pool", None) in (addr(pair), addr(emitter)) for r in recs)
