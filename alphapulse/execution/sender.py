"""Send mode: a checked, profitable signal becomes a signed ArbExecutor.execute transaction.

* The key is read once from an environment variable or a key file; only the account's address
  is ever logged or reported.
* The transaction carries the on-chain profit guard: ``minProfit`` is the gas cost plus
  ``min_profit_usd`` in start-token units, so a cycle whose edge vanished before inclusion reverts
  and costs only gas.
* One opportunity (its pools and direction) is sent at most once per checked block.
* Nonces: the next nonce is the larger of the node's pending count and the last one used
  (``nonce_file``, written before each send), so a restart neither reuses nor skips one.
* Tracking: each sent transaction is followed until its receipt (included: the realised output
  from its CycleExecuted log; reverted: failed) or until its nonce is used by another
  transaction and no receipt appears within ``drop_after_s`` (dropped: failed).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from alphapulse.execution.cycle import Hop, execute_calldata, signal_hops
from alphapulse.execution.rpc import JsonRpc, RpcError, RpcUnavailable
from alphapulse.protocol.layout import SIGNAL_INTRA_BLOCK, SIGNAL_UNPRICED, ExecutionMethod, ExecutionStatus

log = logging.getLogger("alphapulse.execution.sender")

CYCLE_EXECUTED = "0x" + keccak(text="CycleExecuted(address,uint256,uint256)").hex()
GWEI = 10**9


class KeyUnavailable(RuntimeError):
    """Send mode without a readable key (the message names where it looked, never a key)."""


def read_key(key_env: str, key_file: str, environ: dict | None = None) -> str:
    env = os.environ if environ is None else environ
    if key_file:
        p = Path(key_file).expanduser()
        if not p.is_file():
            raise KeyUnavailable(f"execution.key_file {p} does not exist")
        key = p.read_text().strip()
    elif key_env and env.get(key_env):
        key = env[key_env].strip()
    else:
        raise KeyUnavailable(f"send mode needs a key: set the environment variable {key_env or '(key_env)'} "
                             "or execution.key_file")
    body = key[2:] if key.startswith("0x") else key
    if len(body) != 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise KeyUnavailable("the execution key is not 32 bytes of hex")
    return "0x" + body


class NonceStore:
    """The last nonce used, in a file written before each send (survives restarts)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser() if path else None

    def last(self) -> int:
        if self.path is None or not self.path.is_file():
            return -1
        try:
            return int(self.path.read_text().strip())
        except ValueError:
            return -1

    def save(self, nonce: int) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(nonce))
        os.replace(tmp, self.path)


@dataclass
class Pending:
    tx_hash: str
    nonce: int
    report: Any
    sent_at: float = field(default_factory=time.monotonic)
    nonce_taken_at: float | None = None   # when its nonce was first seen taken without a receipt


class Sender:
    def __init__(self, rpc: JsonRpc, send_rpc: JsonRpc, key: str, executor: str, chain_id: int, *,
                 kinds: dict[int, int], min_profit_usd: float = 0.0, max_gas_price_gwei: float = 1000.0,
                 priority_fee: str = "node", priority_fee_gwei: float = 30.0, nonce_file: str = "",
                 gas_margin: float = 1.3, drop_after_s: float = 2.0) -> None:
        from eth_account import Account
        self._account = Account.from_key(key)
        self.address = self._account.address
        self.rpc, self.send_rpc = rpc, send_rpc
        self.executor = to_checksum_address(executor)
        self.chain_id = chain_id
        self.kinds = kinds
        self.min_profit_usd_e8 = int(round(min_profit_usd * 1e8))
        self.max_fee_wei = int(max_gas_price_gwei * GWEI)
        self.priority_fee, self.priority_fee_wei = priority_fee, int(priority_fee_gwei * GWEI)
        self.nonces = NonceStore(nonce_file)
        self.gas_margin = gas_margin
        self.drop_after_s = drop_after_s
        self.pending: dict[str, Pending] = {}
        self.sent_keys: set[tuple] = set()
        self.skipped: dict[str, int] = {}
        self._next_nonce: int | None = None

    def __repr__(self) -> str:   # never the key
        return f"Sender(address={self.address}, executor={self.executor}, pending={len(self.pending)})"

    @classmethod
    def from_settings(cls, s: dict, rpc_url: str, timeout_s: float, kinds: dict[int, int]) -> "Sender":
        key = read_key(s.get("key_env", ""), s.get("key_file", ""))
        rpc = JsonRpc(rpc_url, timeout_s)
        send_rpc = JsonRpc(s["send_url"], timeout_s) if s.get("send_url") else rpc
        return cls(rpc, send_rpc, key, s["executor"], int(s["chain_id"]), kinds=kinds,
                   min_profit_usd=s.get("min_profit_usd", 0.0), max_gas_price_gwei=s.get("max_gas_price_gwei", 1000.0),
                   priority_fee=s.get("priority_fee", "node"), priority_fee_gwei=s.get("priority_fee_gwei", 30.0),
                   nonce_file=s.get("nonce_file", ""))

    # ------------------------------------------------------------------ sending
    def _skip(self, why: str) -> list:
        self.skipped[why] = self.skipped.get(why, 0) + 1
        return []

    def _nonce(self) -> int:
        if self._next_nonce is None:
            node = int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
            self._next_nonce = max(node, self.nonces.last() + 1)
        return self._next_nonce

    def min_profit_units(self, sig: Any, report: Any) -> int:
        """The profit guard in start-token units: gas at the checked price plus min_profit_usd,
        valued with the signal's own price of the start token (0 for an unpriced signal)."""
        units = int(sig.amount_out) - int(sig.amount_in)
        if int(sig.flags) & SIGNAL_UNPRICED or units <= 0 or int(sig.gross_profit_usd_e8) <= 0:
            return 0
        gas_usd = (int(sig.gas_cost_usd_e8) * report.gas_used * report.gas_price_wei // int(sig.gas_cost_wei)
                   if int(sig.gas_cost_wei) > 0 else 0)
        need_e8 = gas_usd + self.min_profit_usd_e8
        return -(-need_e8 * units // int(sig.gross_profit_usd_e8))

    def consider(self, sig: Any, report: Any) -> list:
        """Reports of what was done for one checked signal: [SENT] or nothing (counted skip)."""
        if report.status not in (ExecutionStatus.CONFIRMED, ExecutionStatus.CHANGED):
            return self._skip("not_profitable")
        if int(sig.flags) & SIGNAL_INTRA_BLOCK:   # priced between two events of a block: never traded
            return self._skip("intra_block")
        if not int(sig.flags) & SIGNAL_UNPRICED and report.net_profit_usd_e8 < self.min_profit_usd_e8:
            return self._skip("below_min_profit")
        hops = signal_hops(sig, self.kinds)
        key = (report.checked_block, tuple((h.pool, h.token_in) for h in hops))
        if key in self.sent_keys:
            return self._skip("already_sent_this_block")
        try:
            return [self._send(sig, report, hops, key)]
        except RpcUnavailable as e:
            log.warning("send of signal %d not done: %s", int(sig.signal_id), e)
            return self._skip("node_unavailable")
        except (ValueError, TypeError) as e:   # a transaction the signer refuses: skipped, never a crash
            log.warning("send of signal %d not done: %s: %s", int(sig.signal_id), type(e).__name__, e)
            return self._skip("send_error")

    def _fees(self) -> tuple[int, int] | None:
        blk, prio = self.rpc.batch([("eth_getBlockByNumber", ["latest", False]), ("eth_maxPriorityFeePerGas", [])])
        if isinstance(blk, RpcError) or not isinstance(blk, dict):
            raise RpcUnavailable(f"no latest block: {blk}")
        base = int(blk.get("baseFeePerGas", "0x0"), 16)
        tip = self.priority_fee_wei if self.priority_fee == "fixed" or isinstance(prio, RpcError) else int(prio, 16)
        if base + tip > self.max_fee_wei:
            return None
        return min(2 * base + tip, self.max_fee_wei), tip

    def _send(self, sig: Any, report: Any, hops: list[Hop], key: tuple) -> Any:
        fees = self._fees()
        if fees is None:
            self._skip("gas_price_above_max")
            raise RpcUnavailable("gas price above execution.max_gas_price_gwei")
        max_fee, tip = fees
        data = execute_calldata(hops, int(sig.amount_in), self.min_profit_units(sig, report))
        nonce = self._nonce()
        tx = {"type": 2, "chainId": self.chain_id, "nonce": nonce, "to": self.executor, "value": 0,
              "data": "0x" + data.hex(), "gas": int(report.gas_used * self.gas_margin) + 50_000,
              "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
        raw = self._account.sign_transaction(tx).raw_transaction
        self.nonces.save(nonce)   # before the send: a crash after it must not reuse the nonce
        try:
            h = self.send_rpc.call("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        except RpcError as e:
            if "nonce" in e.message.lower():
                self._next_nonce = None   # resync from the node on the next send
            raise RpcUnavailable(f"transaction refused: {e.message}") from None
        self._next_nonce = nonce + 1
        self.sent_keys.add(key)
        if len(self.sent_keys) > 4096:
            newest = max(k[0] for k in self.sent_keys)
            self.sent_keys = {k for k in self.sent_keys if k[0] >= newest - 2}
        sent = replace(report, status=int(ExecutionStatus.SENT), method=int(ExecutionMethod.TRANSACTION),
                       gas_price_wei=max_fee, tx_hash=bytes.fromhex(h[2:]), done_ts_ns=time.time_ns())
        self.pending[h] = Pending(h, nonce, sent)
        log.info("sent signal %d as %s (nonce %d)", int(sig.signal_id), h, nonce)
        return sent

    # ------------------------------------------------------------------ tracking
    def poll(self) -> list:
        """INCLUDED / FAILED reports of the pending transactions that reached an outcome.

        The account's mined transaction count is read first and the receipts after it, in a
        second request: a node answers the calls of one batch in any order, and it counts a new
        block's nonces before its receipts are readable, so a receipt missing beside a count that
        already includes its nonce does not mean the transaction was dropped. A transaction is
        reported dropped only when its nonce is taken and it still has no receipt ``drop_after_s``
        seconds after that was first seen."""
        if not self.pending:
            return []
        hashes = list(self.pending)
        try:
            count = self.rpc.call("eth_getTransactionCount", [self.address, "latest"])
            res = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        except (RpcUnavailable, RpcError) as e:
            log.warning("receipts not read: %s", e)
            return []
        mined_nonce = int(count, 16) if isinstance(count, str) else -1
        now = time.monotonic()
        out = []
        for h, rc in zip(hashes, res):
            p = self.pending[h]
            if isinstance(rc, dict) and rc.get("blockNumber"):
                out.append(self._outcome(p, rc))
                del self.pending[h]
            elif p.nonce < mined_nonce:   # its nonce is taken and no receipt yet: dropped, or not yet readable
                if p.nonce_taken_at is None:
                    p.nonce_taken_at = now
                elif now - p.nonce_taken_at >= self.drop_after_s:
                    log.info("transaction %s dropped: nonce %d taken, no receipt after %.1f s", h, p.nonce,
                             now - p.nonce_taken_at)
                    out.append(replace(p.report, status=int(ExecutionStatus.FAILED), gas_used=0,
                                       amount_out_checked=0, done_ts_ns=time.time_ns()))
                    del self.pending[h]
        return out

    def _outcome(self, p: Pending, rc: dict) -> Any:
        ok = int(rc.get("status", "0x0"), 16) == 1
        realised = 0
        for lg in rc.get("logs", []):
            if lg.get("address", "").lower() == self.executor.lower() and lg.get("topics") \
                    and lg["topics"][0].lower() == CYCLE_EXECUTED:
                _amount_in, realised = abi_decode(["uint256", "uint256"], bytes.fromhex(lg["data"][2:]))
        return replace(p.report, status=int(ExecutionStatus.INCLUDED if ok else ExecutionStatus.FAILED),
                       checked_block=int(rc["blockNumber"], 16), gas_used=int(rc.get("gasUsed", "0x0"), 16),
                       gas_price_wei=int(rc.get("effectiveGasPrice", "0x0"), 16), amount_out_checked=int(realised),
                       done_ts_ns=time.time_ns())


def deploy_executor(rpc: JsonRpc, key: str, chain_id: int, timeout_s: float = 30.0) -> str:
    """Deploy ArbExecutor from the key's account (its owner, who alone can withdraw); its address."""
    from eth_account import Account

    from alphapulse.chain.artifacts import load_artifact
    acct = Account.from_key(key)
    nonce = int(rpc.call("eth_getTransactionCount", [acct.address, "pending"]), 16)
    gas_price = int(rpc.call("eth_gasPrice"), 16)
    tx = {"chainId": chain_id, "nonce": nonce, "to": None, "value": 0, "gas": 2_500_000,
          "gasPrice": gas_price * 2, "data": load_artifact("ArbExecutor").bytecode}
    tx.pop("to")
    h = rpc.call("eth_sendRawTransaction", ["0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()])
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        rc = rpc.call("eth_getTransactionReceipt", [h])
        if rc:
            if int(rc["status"], 16) != 1:
                raise RuntimeError(f"ArbExecutor deployment {h} reverted")
            return rc["contractAddress"]
        time.sleep(0.02)
    raise RpcUnavailable(f"ArbExecutor deployment {h} not mined within {timeout_s:g} s")
