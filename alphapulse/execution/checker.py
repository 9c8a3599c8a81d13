"""Checks a signal by executing its cycle with the pools' real bytecode on the newest state.

Two methods, same contract code (ArbExecutor.quote) and the same classification:

* ``EthCallMethod``: one batched request to the node, ``eth_call`` with a state override placing
  the executor's runtime code at an unused address, bracketed by ``eth_blockNumber`` so the state's
  block is exact (a block mined in between re-runs the call at the newer block).
* ``RevmMethod``: an in-process EVM (pyrevm) forked from the node at the newest block; the pools'
  accounts and slots it touches stay cached until the next block; a check costs one request for
  the newest block's header (its hash, so a reorganised block of the same number is not mistaken
  for it) plus the execution. A new block is forked and warmed by ``update()`` when it arrives
  (re-executing the recently checked cycles), so the node round trips of the re-read are not on a
  check's path.

The result is an ExecutionReport: confirmed (the checked output equals the signal's to the wei),
changed (still profitable, another output), unprofitable (the output does not repay the input, or
the profit does not pay the gas at the node's gas price), or reverted (any other failure).
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Any, Mapping

from alphapulse.execution.cycle import (CHECK_CALLER, CHECK_EXECUTOR, CHECK_GAS_LIMIT, Hop, decode_quote,
                                        execute_calldata, executor_runtime, intrinsic_gas, quote_calldata,
                                        revert_reason, signal_hops)
from alphapulse.execution.rpc import JsonRpc, RpcError, RpcUnavailable
from alphapulse.protocol import codec as C
from alphapulse.protocol.layout import SIGNAL_UNPRICED, ExecutionMethod, ExecutionStatus

__all__ = ["Execution", "EthCallMethod", "RevmMethod", "Checker", "classify", "make_method", "RpcUnavailable"]


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of a cycle by real contract code."""
    block: int
    amount_out: int        # start-token units the cycle returned (0 when reverted)
    gas_used: int          # the execution frame's gas plus the transaction's intrinsic gas, at an address
                           # holding no tokens, before the transaction's refund (storage set back to
                           # zero, capped at a fifth): above the receipt's but for a V2 pool's
                           # accumulator writes a same-second check skips (docs/architecture.md)
    gas_price_wei: int     # the node's gas price at that block
    reverted: str = ""     # the reason, when the cycle failed other than by not repaying its input


def _gas_total(hops: list[Hop], amount_in: int, frame_gas: int) -> int:
    return frame_gas + intrinsic_gas(execute_calldata(hops, amount_in, 0))


def _from_call(block: int, result: Any, gas_price: int, hops: list[Hop], amount_in: int) -> Execution:
    if isinstance(result, RpcError):
        data = result.data if isinstance(result.data, str) else (result.data or {}).get("data", "") \
            if isinstance(result.data, dict) else ""
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
        if result.code not in (3, -32000, -32015) and not raw and "revert" not in result.message.lower():
            raise RpcUnavailable(f"eth_call failed: {result}")
        return Execution(block, 0, 0, gas_price, revert_reason(raw) if raw else result.message[:80] or "reverted")
    out, gas, _ok = decode_quote(bytes.fromhex(result[2:]))
    return Execution(block, out, _gas_total(hops, amount_in, gas), gas_price)


class EthCallMethod:
    """``eth_call`` with a state override on the node (no deployment, no funds)."""
    method = ExecutionMethod.ETH_CALL

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.rpc = JsonRpc(url, timeout_s)
        self._override = {CHECK_EXECUTOR: {"code": "0x" + executor_runtime().hex()}}

    def run(self, hops: list[Hop], amount_in: int) -> Execution:
        call = {"from": CHECK_CALLER, "to": CHECK_EXECUTOR, "gas": hex(CHECK_GAS_LIMIT),
                "data": "0x" + quote_calldata(hops, amount_in).hex()}
        b0, res, gp, b1 = self.rpc.batch([("eth_blockNumber", []), ("eth_call", [call, "latest", self._override]),
                                          ("eth_gasPrice", []), ("eth_blockNumber", [])])
        for v in (b0, gp, b1):
            if isinstance(v, RpcError):
                raise RpcUnavailable(f"node error: {v}")
        if b0 != b1:   # a block was mined during the call: run it again at a named block
            res, gp = self.rpc.batch([("eth_call", [call, b1, self._override]), ("eth_gasPrice", [])])
            if isinstance(gp, RpcError):
                raise RpcUnavailable(f"node error: {gp}")
        return _from_call(int(b1, 16), res, int(gp, 16), hops, amount_in)

    def close(self) -> None:
        self.rpc.close()


class RevmMethod:
    """An in-process EVM (pyrevm) forked from the node at its newest block, cached per block.

    A fork reads each account and slot a check touches from the node once, at the fork's block;
    a check in a known block runs on that cache. ``update()`` brings the EVM to a new block ahead
    of the checks (the component calls it while no signal waits): it forks at the new block and
    re-executes there the ``warm_cycles`` cycles checked most recently, so the accounts and slots
    they touch are read before a signal asks, and the first check of the new block costs what a
    check in a known block costs. A check finding a block no ``update()`` prepared forks itself
    (``forks_on_check``). Each fork is fresh at the block's hash: nothing of an older block is
    carried over, so a check is exact by construction (an EVM kept across blocks by writing each
    block's state diff into it is not: pyrevm 0.3.7 writes slots through its journal, where they
    stay warm and dirty for later executions, so their gas is too low; docs/performance.md)."""
    method = ExecutionMethod.IN_PROCESS_EVM

    def __init__(self, url: str, timeout_s: float = 2.0, spec_id: str = "CANCUN", *, warm_cycles: int = 8) -> None:
        from pyrevm import EVM, AccountInfo   # optional dependency (the "execution" extra)
        if warm_cycles < 0:
            raise ValueError(f"warm_cycles must be >= 0, got {warm_cycles}")
        self._EVM, self._AccountInfo = EVM, AccountInfo
        self.rpc = JsonRpc(url, timeout_s)
        self.url = self.rpc.url.replace("ws://", "http://").replace("wss://", "https://")
        self._code = executor_runtime()
        self.evm: Any = None
        self.block = -1
        self.block_hash = ""
        self.gas_price = 0
        self.forks = 0
        self.forks_on_check = 0        # forks a check had to make itself (no update() before it)
        self.spec_id = spec_id
        self.warm_cycles = warm_cycles
        self._recent: collections.OrderedDict[tuple[Hop, ...], int] = collections.OrderedDict()

    def _head(self) -> dict:
        # keyed by the block's hash, not its number: a reorganised chain reuses the number
        blk = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(blk, dict) or "hash" not in blk or "number" not in blk:
            raise RpcUnavailable(f"node answered eth_getBlockByNumber with {type(blk).__name__}")
        return blk

    def _fork(self, blk: dict) -> None:
        gp = int(self.rpc.call("eth_gasPrice"), 16)
        evm = self._EVM(fork_url=self.url, fork_block=blk["hash"], spec_id=self.spec_id)
        evm.insert_account_info(CHECK_EXECUTOR, self._AccountInfo(code=self._code))
        self.evm, self.block, self.block_hash, self.gas_price = evm, int(blk["number"], 16), blk["hash"], gp
        self.forks += 1

    def _at_newest(self) -> None:
        blk = self._head()
        if blk["hash"] != self.block_hash or self.evm is None:
            self._fork(blk)
            self.forks_on_check += 1

    def update(self) -> bool:
        """Forks at the node's newest block when it is new and executes the recent cycles there
        (their reverts are of no interest: only the reads); True when the block was new."""
        blk = self._head()
        if blk["hash"] == self.block_hash and self.evm is not None:
            return False
        self._fork(blk)
        for hops, amount_in in list(self._recent.items()):
            self._execute(list(hops), amount_in)
        return True

    def _execute(self, hops: list[Hop], amount_in: int) -> Execution:
        data = quote_calldata(hops, amount_in)
        mark = self.evm.snapshot()   # the block's state stays as forked: each check starts from it
        try:
            raw = self.evm.message_call(CHECK_CALLER, CHECK_EXECUTOR, data, gas=CHECK_GAS_LIMIT)
        except RuntimeError as e:   # pyrevm reports a revert as RuntimeError("Revert { ... output: 0x.. }")
            text = str(e)
            at = text.find("0x", text.find("output"))
            hexdata = text[at + 2:].split()[0].rstrip("})\",") if at >= 0 else ""
            try:
                reason = revert_reason(bytes.fromhex(hexdata))
            except ValueError:
                reason = text[:80]
            return Execution(self.block, 0, 0, self.gas_price, reason)
        finally:
            self.evm.revert(mark)
        out, gas, _ok = decode_quote(bytes(raw))
        return Execution(self.block, out, _gas_total(hops, amount_in, gas), self.gas_price)

    def run(self, hops: list[Hop], amount_in: int) -> Execution:
        self._at_newest()
        ex = self._execute(hops, amount_in)
        if self.warm_cycles:
            key = tuple(hops)
            self._recent[key] = amount_in
            self._recent.move_to_end(key)
            while len(self._recent) > self.warm_cycles:
                self._recent.popitem(last=False)
        return ex

    def close(self) -> None:
        self.rpc.close()
        self.evm = None


def make_method(name: str, url: str, timeout_s: float, warm_cycles: int = 8) -> Any:
    if name == "eth_call":
        return EthCallMethod(url, timeout_s)
    if name == "revm":
        return RevmMethod(url, timeout_s, warm_cycles=warm_cycles)
    raise ValueError(f"unknown check method {name!r} (eth_call or revm)")


def classify(sig: Any, ex: Execution) -> tuple[int, int]:
    """(ExecutionStatus, net profit in USD x 1e8 at the checked state after gas) of one execution.

    The signal's own USD figures give the prices: the start token's from its gross profit per unit,
    the native token's from its gas cost per wei (an unpriced signal has no USD: net 0, profitable
    when the output exceeds the input)."""
    if ex.reverted:
        return int(ExecutionStatus.REVERTED), 0
    gross_units = ex.amount_out - int(sig.amount_in)
    net = 0
    if not int(sig.flags) & SIGNAL_UNPRICED:
        sig_units = int(sig.amount_out) - int(sig.amount_in)
        gross = int(sig.gross_profit_usd_e8) * gross_units // sig_units if sig_units > 0 else 0
        gas = (int(sig.gas_cost_usd_e8) * ex.gas_used * ex.gas_price_wei // int(sig.gas_cost_wei)
               if int(sig.gas_cost_wei) > 0 else 0)
        net = gross - gas
    if gross_units <= 0:
        return int(ExecutionStatus.UNPROFITABLE), net
    if ex.amount_out == int(sig.amount_out):
        return int(ExecutionStatus.CONFIRMED), net
    if not int(sig.flags) & SIGNAL_UNPRICED and net <= 0:
        return int(ExecutionStatus.UNPROFITABLE), net
    return int(ExecutionStatus.CHANGED), net


class Checker:
    """Signal -> ExecutionReport with one method; ``kinds`` maps venue -> PoolKind."""

    def __init__(self, method: Any, kinds: Mapping[int, int]) -> None:
        self.method = method
        self.kinds = dict(kinds)

    def check(self, sig: Any) -> tuple[Any, Execution, int]:
        """(ExecutionReport, the execution, nanoseconds taken); raises RpcUnavailable (dead or
        slow node) and UnknownVenue (a pool of no configured factory)."""
        t0 = time.perf_counter_ns()
        hops = signal_hops(sig, self.kinds)
        ex = self.method.run(hops, int(sig.amount_in))
        took = time.perf_counter_ns() - t0
        status, net = classify(sig, ex)
        rep = C.ExecutionReport(
            signal_id=int(sig.signal_id), checked_block=ex.block, signal_block=int(sig.block_number),
            trigger_ts_ns=int(sig.trigger_ts_ns), done_ts_ns=time.time_ns(), amount_in=int(sig.amount_in),
            amount_out_signal=int(sig.amount_out), amount_out_checked=ex.amount_out, gas_used=ex.gas_used,
            gas_price_wei=min(ex.gas_price_wei, 2**64 - 1), net_profit_usd_e8=net, chain_id=int(sig.chain_id),
            strategy_id=int(sig.strategy_id), status=status, method=int(self.method.method))
        return rep, ex, took

    def close(self) -> None:
        self.method.close()
