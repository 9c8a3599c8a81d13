"""Send mode on anvil: a confirmed signal sent as a transaction grows the executor's balance by
exactly the confirmed gross profit; a transaction whose opportunity vanished reverts on the profit
guard and costs only gas; an opportunity is sent once per block; nonces survive a restart; the key
never appears in logs or representations."""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alphapulse.chain.anvil import DEV_PRIVATE_KEYS
from alphapulse.execution.checker import Checker, EthCallMethod
from alphapulse.execution.cycle import revert_reason
from alphapulse.execution.rpc import JsonRpc, RpcError
from alphapulse.execution.sender import Sender, deploy_executor, read_key
from alphapulse.protocol.layout import ExecutionMethod, ExecutionStatus

from tests.conftest import own_node_fixtures
from tests.execution.chain_signals import by_shape, kinds, moved_market_signals, path


anvil, _deployed_market = own_node_fixtures()      # a node of its own: see tests/conftest.py

KEY = DEV_PRIVATE_KEYS[7]
QUOTE_OVERHEAD_MAX = 2_500   # ArbExecutor.quote's call of this.execute, measured 1,787 on 2-hop cycles
FIRST_WRITE = 22_100 - 5_000   # a token balance written from zero (cold) versus from non-zero (cold)


def _sender(anvil, executor, nonce_file="", **kw):
    rpc = JsonRpc(anvil.http_url, 5.0)
    return Sender(rpc, rpc, KEY, executor, 137 if anvil.rpc("eth_chainId") == "0x89" else int(anvil.rpc("eth_chainId"), 16),
                  kinds=kw.pop("kinds"), nonce_file=nonce_file, **kw)


def _until_outcome(sender, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = sender.poll()
        if out:
            return out
        time.sleep(0.02)
    raise AssertionError(f"no receipt within {timeout} s: {sender}")


def test_included_transactions_grow_the_executor_by_the_confirmed_gross_profit(market, anvil, caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="alphapulse")
    rpc = JsonRpc(anvil.http_url, 5.0)
    chain_id = int(anvil.rpc("eth_chainId"), 16)
    executor = deploy_executor(rpc, KEY, chain_id)
    sigs = moved_market_signals(market)
    picked = by_shape(market, sigs, 1)
    checker = Checker(EthCallMethod(anvil.http_url), kinds(market))
    nonce_file = tmp_path / "nonce"
    sender = _sender(anvil, executor, str(nonce_file), kinds=kinds(market))
    included = 0
    for shape_ in ("V2-V2", "V2-V3", "V3-V3", "triangle"):
        sig = picked[shape_][0]
        rep, ex, _ = checker.check(sig)
        if rep.status not in (ExecutionStatus.CONFIRMED, ExecutionStatus.CHANGED):
            continue   # an earlier cycle of this test took the edge
        start = path(sig)[0][1]
        before = market.balance(executor, start)
        (sent,) = sender.consider(sig, rep)
        assert sent.status == ExecutionStatus.SENT and sent.method == ExecutionMethod.TRANSACTION
        assert sent.tx_hash != bytes(32)
        # the same opportunity in the same checked block is not sent again
        assert sender.consider(sig, rep) == [] and sender.skipped["already_sent_this_block"] >= 1
        (done,) = _until_outcome(sender)
        assert done.status == ExecutionStatus.INCLUDED, (shape_, done)
        assert done.amount_out_checked == rep.amount_out_checked        # realised, from the receipt's log
        assert market.balance(executor, start) - before == rep.amount_out_checked - rep.amount_in
        # the check's gas is the execution's gas before the transaction's refund, plus quote's own
        # call of execute (1,787 gas on these cycles), at an address that holds no tokens: less the
        # refund (capped at a fifth) and 17,100 once the executor holds the start token. It is not
        # an upper bound: a check made in the same second as a V2 pool's last update skips the
        # pool's price-accumulator writes (5,000-44,000 gas a pool, by whether the accumulators
        # were zero) that the transaction, one block later, pays. The sender's gas limit covers
        # both (check gas x margin + 50,000), so the transaction never runs out of gas.
        head = rep.gas_used - QUOTE_OVERHEAD_MAX - FIRST_WRITE
        limit = int(rep.gas_used * sender.gas_margin) + 50_000
        assert head <= done.gas_used * 5 // 4 and done.gas_used < limit, (shape_, rep.gas_used, done.gas_used)
        included += 1
    assert included >= 2
    # nonces survive a restart: a new sender continues after the last one used
    assert int(nonce_file.read_text()) == int(anvil.rpc("eth_getTransactionCount", [sender.address, "latest"]), 16) - 1
    again = _sender(anvil, executor, str(nonce_file), kinds=kinds(market))
    assert again._nonce() == int(nonce_file.read_text()) + 1
    checker.close()
    text = caplog.text + repr(sender) + repr(again)
    assert KEY[2:] not in text.lower() and KEY[2:].upper() not in text


def test_a_vanished_opportunity_reverts_on_the_guard_and_costs_only_gas(market, anvil):
    rpc = JsonRpc(anvil.http_url, 5.0)
    chain_id = int(anvil.rpc("eth_chainId"), 16)
    executor = deploy_executor(rpc, KEY, chain_id)
    sig = by_shape(market, moved_market_signals(market), 1)["V2-V2"][0]
    checker = Checker(EthCallMethod(anvil.http_url), kinds(market))
    rep, _, _ = checker.check(sig)
    assert rep.status == ExecutionStatus.CONFIRMED
    # a competitor takes the edge between the check and the transaction
    first_pool, token_in, _ = path(sig)[0]
    market.swap(first_pool, token_in, sig.amount_in * 3)
    sender = _sender(anvil, executor, kinds=kinds(market))
    start = path(sig)[0][1]
    bal_exec = market.balance(executor, start)
    native = int(anvil.rpc("eth_getBalance", [sender.address, "latest"]), 16)
    (sent,) = sender.consider(sig, rep)
    (done,) = _until_outcome(sender)
    assert done.status == ExecutionStatus.FAILED and done.amount_out_checked == 0
    rc = anvil.rpc("eth_getTransactionReceipt", ["0x" + sent.tx_hash.hex()])
    assert int(rc["status"], 16) == 0
    assert market.balance(executor, start) == bal_exec
    cost = int(rc["gasUsed"], 16) * int(rc["effectiveGasPrice"], 16)
    assert native - int(anvil.rpc("eth_getBalance", [sender.address, "latest"]), 16) == cost
    # the revert is the profit guard (or the cycle not repaying its first pool), not a pool failure
    tx = anvil.rpc("eth_getTransactionByHash", ["0x" + sent.tx_hash.hex()])
    try:
        rpc.call("eth_call", [{"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                              hex(int(rc["blockNumber"], 16) - 1)])
        raise AssertionError("the replayed transaction did not revert")
    except RpcError as e:
        data = e.data if isinstance(e.data, str) else ""
        assert revert_reason(bytes.fromhex(data[2:])) in ("ProfitGuard", "Shortfall"), e
    checker.close()


def test_the_key_comes_from_env_or_file_and_errors_never_show_it(tmp_path):
    assert read_key("AP_TEST_KEY", "", {"AP_TEST_KEY": KEY}) == KEY
    f = tmp_path / "k"
    f.write_text(KEY[2:] + "\n")
    assert read_key("", str(f), {}) == KEY
    import pytest
    from alphapulse.execution.sender import KeyUnavailable
    with pytest.raises(KeyUnavailable, match="AP_TEST_KEY"):
        read_key("AP_TEST_KEY", "", {})
    bad = KEY[:-2] + "zz"
    with pytest.raises(KeyUnavailable) as e:
        read_key("AP_TEST_KEY", "", {"AP_TEST_KEY": bad})
    assert bad not in str(e.value) and bad[2:] not in str(e.value)


def test_signals_priced_between_two_events_of_a_block_are_never_sent():
    from alphapulse.protocol import codec as C
    from alphapulse.protocol.layout import SIGNAL_INTRA_BLOCK
    rpc = JsonRpc("http://127.0.0.1:9", 0.2)      # never reached: the skip comes first
    sender = Sender(rpc, rpc, KEY, "0x" + "11" * 20, 137, kinds={400: 1})
    sig = C.ArbitrageSignal(amount_in=10, amount_out=12, hops=2, venues=(400, 400, 0), flags=SIGNAL_INTRA_BLOCK)
    rep = C.ExecutionReport(status=int(ExecutionStatus.CONFIRMED), amount_in=10, amount_out_checked=12)
    assert sender.consider(sig, rep) == [] and sender.skipped == {"intra_block": 1}


class _LaggingReceipts:
    """A JSON-RPC server in front of the node that answers everything from it, except that the
    first ``lag`` reads of ``hash``'s receipt answer null: the window in which a node already
    counts a new block's nonces but does not yet serve its receipts (anvil answers a batch's calls
    concurrently, so one batch can hold the new count beside the old receipt)."""

    def __init__(self, upstream: str, lag: int = 1) -> None:
        self.upstream, self.lag, self.hash, self.withheld = upstream, lag, None, 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = urllib.request.Request(outer.upstream, body, {"Content-Type": "application/json"})
                ans = json.loads(urllib.request.urlopen(req, timeout=10).read())
                calls, answers = json.loads(body), ans
                if isinstance(calls, dict):
                    calls, answers = [calls], [ans]
                for c, a in zip(calls, answers):
                    if c["method"] == "eth_getTransactionReceipt" and c["params"][0] == outer.hash \
                            and outer.withheld < outer.lag:
                        outer.withheld += 1
                        a["result"] = None
                out = json.dumps(ans).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_included_transaction_whose_receipt_lags_its_nonce_is_not_reported_dropped(market, anvil):
    rpc = JsonRpc(anvil.http_url, 5.0)
    chain_id = int(anvil.rpc("eth_chainId"), 16)
    executor = deploy_executor(rpc, KEY, chain_id)
    sig = by_shape(market, moved_market_signals(market), 1)["V2-V2"][0]
    checker = Checker(EthCallMethod(anvil.http_url), kinds(market))
    rep, _, _ = checker.check(sig)
    assert rep.status == ExecutionStatus.CONFIRMED
    proxy = _LaggingReceipts(anvil.http_url, lag=1)
    try:
        prpc = JsonRpc(proxy.url, 5.0)
        sender = Sender(prpc, prpc, KEY, executor, chain_id, kinds=kinds(market), drop_after_s=0.5)
        (sent,) = sender.consider(sig, rep)
        proxy.hash = "0x" + sent.tx_hash.hex()
        end = time.monotonic() + 20
        while anvil.rpc("eth_getTransactionReceipt", [proxy.hash]) is None:   # mined (automine)
            assert time.monotonic() < end, "not mined"
            time.sleep(0.02)
        nonce = sender.pending[proxy.hash].nonce
        assert int(anvil.rpc("eth_getTransactionCount", [sender.address, "latest"]), 16) > nonce
        assert sender.poll() == [] and proxy.withheld == 1     # nonce taken, receipt not served yet
        (done,) = _until_outcome(sender)
        assert done.status == ExecutionStatus.INCLUDED and done.amount_out_checked == rep.amount_out_checked
    finally:
        proxy.close()
        checker.close()


def test_a_transaction_replaced_before_inclusion_is_reported_dropped(market, anvil):
    from eth_account import Account
    rpc = JsonRpc(anvil.http_url, 5.0)
    chain_id = int(anvil.rpc("eth_chainId"), 16)
    executor = deploy_executor(rpc, KEY, chain_id)
    sig = by_shape(market, moved_market_signals(market), 1)["V2-V2"][0]
    checker = Checker(EthCallMethod(anvil.http_url), kinds(market))
    rep, _, _ = checker.check(sig)
    sender = _sender(anvil, executor, kinds=kinds(market), drop_after_s=0.3)
    anvil.set_automine(False)
    (sent,) = sender.consider(sig, rep)
    tx = anvil.rpc("eth_getTransactionByHash", ["0x" + sent.tx_hash.hex()])
    # the same nonce, a higher fee: the node replaces the sent transaction with this one
    acct = Account.from_key(KEY)
    other = acct.sign_transaction({"type": 2, "chainId": chain_id, "nonce": int(tx["nonce"], 16), "to": acct.address,
                                   "value": 0, "gas": 21_000, "maxFeePerGas": int(tx["maxFeePerGas"], 16) * 3,
                                   "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"], 16) * 3})
    anvil.rpc("eth_sendRawTransaction", ["0x" + bytes(other.raw_transaction).hex()])
    anvil.mine()
    assert anvil.rpc("eth_getTransactionReceipt", ["0x" + sent.tx_hash.hex()]) is None
    assert sender.poll() == []          # nonce taken without a receipt: dropped only after drop_after_s
    (done,) = _until_outcome(sender)
    assert done.status == ExecutionStatus.FAILED and done.gas_used == 0 and done.amount_out_checked == 0
    assert not sender.pending
    checker.close()
