"""Sending transactions to a local node quickly and safely (sync web3 over HTTP).

Facts this relies on (measured, see LOCAL_CHAIN.md): anvil returns a tx hash before mining, so
always wait for the receipt with a short poll interval; explicit gas skips ``eth_estimateGas``;
sends from one account must go one at a time (each ``eth_sendTransaction`` awaited); with
automine off, N transactions followed by ``evm_mine`` land in one block, in send order when
anvil runs with ``--order fifo``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from eth_abi import encode as abi_encode
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

__all__ = ["ChainTxError", "TxSender", "encode_deploy"]

MAX_FEE_PER_GAS = 500 * 10**9
MAX_PRIORITY_FEE_PER_GAS = 10**9


class ChainTxError(RuntimeError):
    """A transaction reverted (receipt status 0) or was never mined."""


def encode_deploy(w3: Web3, abi: list, bytecode: str, args: Sequence[Any] = ()) -> str:
    """Creation data: bytecode followed by the ABI-encoded constructor arguments."""
    ctor = next((e for e in abi if e.get("type") == "constructor"), None)
    types = [_abi_type(i) for i in ctor["inputs"]] if ctor else []
    if len(types) != len(args):
        raise ValueError(f"constructor takes {len(types)} arguments, got {len(args)}")
    return bytecode + (abi_encode(types, list(args)).hex() if types else "")


def _abi_type(inp: dict) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


@dataclass
class TxSender:
    """Builds complete transactions (no web3 default-filling round trips) and waits for receipts."""

    w3: Web3
    chain_id: int
    poll_latency: float = 0.005
    receipt_timeout: float = 60.0
    _gas_limit: int | None = None

    def tx(self, sender: str, to: str | None, data: str, gas: int, value: int = 0) -> dict:
        tx = {
            "from": sender,
            "data": data,
            "gas": gas,
            "value": value,
            "maxFeePerGas": MAX_FEE_PER_GAS,
            "maxPriorityFeePerGas": MAX_PRIORITY_FEE_PER_GAS,
            "chainId": self.chain_id,
        }
        if to is not None:
            tx["to"] = to
        return tx

    def send(self, tx: dict) -> bytes:
        """One raw ``eth_sendTransaction`` (web3's send_transaction adds 4 RPC round trips per tx)."""
        wire = {k: (hex(v) if isinstance(v, int) else v) for k, v in tx.items()}
        reply = self.w3.provider.make_request("eth_sendTransaction", [wire])
        if "error" in reply:
            raise ChainTxError(f"eth_sendTransaction rejected: {reply['error']}")
        return HexBytes(reply["result"])

    def block_gas_limit(self) -> int:
        if self._gas_limit is None:
            self._gas_limit = self.w3.eth.get_block("latest")["gasLimit"]
        return self._gas_limit

    def wait(self, tx_hash: bytes, label: str = "tx") -> Any:
        rc = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self.receipt_timeout, poll_latency=self.poll_latency)
        if rc["status"] != 1:
            raise ChainTxError(f"{label} reverted in block {rc['blockNumber']} (tx {tx_hash.hex()}, "
                               f"gas used {rc['gasUsed']})")
        return rc

    def transact(self, tx: dict, label: str = "tx") -> Any:
        """Send one tx on an automining node and return its receipt; a revert raises ChainTxError
        carrying the revert reason (replayed with eth_call on the pre-state)."""
        try:
            h = self.send(tx)
        except (ContractLogicError, Web3RPCError) as exc:  # nodes that validate before mining
            raise ChainTxError(f"{label} rejected: {exc}") from exc
        try:
            return self.wait(h, label)
        except ChainTxError as exc:
            raise ChainTxError(f"{exc}: {self.revert_reason(tx, block=self.w3.eth.get_transaction_receipt(h)['blockNumber'] - 1)}") from None

    def revert_reason(self, tx: dict, block: int | str = "latest") -> str:
        """Why ``tx`` reverts, replayed by eth_call on the state of ``block`` with its own gas
        (an out-of-gas shows as a revert without a reason; compare gas used with gas declared)."""
        call = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}
        try:
            self.w3.eth.call(call, block)
        except ContractLogicError as exc:
            return str(exc)
        except Web3RPCError as exc:
            return str(exc)
        return "no revert on replay"

    # ------------------------------------------------------------------ batches in one block
    def get_automine(self) -> bool:
        return bool(self.w3.provider.make_request("anvil_getAutomine", [])["result"])

    def set_automine(self, enabled: bool) -> None:
        self.w3.provider.make_request("evm_setAutomine", [bool(enabled)])

    def mine(self) -> None:
        self.w3.provider.make_request("evm_mine", [])

    def batch(self, txs: Sequence[dict], labels: Sequence[str] | None = None, *, check: bool = True) -> list:
        """Send ``txs`` with automine off and mine them: one block per chunk whose *declared* gas
        fits the block gas limit (anvil silently drops pending txs that do not fit the block being
        mined instead of keeping them for the next). Returns the receipts in send order; with
        ``check`` a revert raises ChainTxError naming every failed tx."""
        if not txs:
            return []
        limit = self.block_gas_limit()
        chunks: list[list[int]] = [[]]
        used = 0
        for i, tx in enumerate(txs):
            if tx["gas"] > limit:
                raise ValueError(f"tx {i} declares {tx['gas']} gas, above the block gas limit {limit}")
            if used + tx["gas"] > limit:
                chunks.append([])
                used = 0
            chunks[-1].append(i)
            used += tx["gas"]
        automine = self.get_automine()
        receipts: list = [None] * len(txs)
        try:
            if automine:
                self.set_automine(False)
            for chunk in chunks:
                hashes = []
                try:
                    for i in chunk:
                        hashes.append(self.send(txs[i]))
                except Exception:
                    if hashes:   # do not leave half a batch pending in the pool
                        self.mine()
                    raise
                self.mine()
                # one eth_getBlockReceipts instead of a receipt round trip per tx
                by_hash = {bytes(rc["transactionHash"]): rc for rc in self.w3.eth.get_block_receipts("latest")}
                for i, h in zip(chunk, hashes):
                    receipts[i] = by_hash.get(bytes(h)) or _receipt_or_none(self.w3, h)
                    if receipts[i] is None:
                        raise ChainTxError(f"{labels[i] if labels else f'tx#{i}'} was not mined by evm_mine")
        finally:
            if automine:
                self.set_automine(True)
        if check:
            failed = [i for i, rc in enumerate(receipts) if rc["status"] != 1]
            if failed:
                names = [(labels[i] if labels else f"tx#{i}") for i in failed]
                first = failed[0]
                reason = self.revert_reason(txs[first], receipts[first]["blockNumber"] - 1)
                raise ChainTxError(f"{len(failed)} of {len(txs)} txs reverted: {names[:8]}; first: {reason}")
        return receipts


def _receipt_or_none(w3: Web3, h: bytes):
    from web3.exceptions import TransactionNotFound
    try:
        return w3.eth.get_transaction_receipt(h)
    except TransactionNotFound:
        return None

