"""A signal's cycle as calls of the ArbExecutor contract (alphapulse/chain/contracts/ArbExecutor.sol).

The signal names each hop's pool, tokens, venue and fee but not the pool's kind: the kind comes
from the configured factories (venue -> "v2" | "v3" | "algebra"), never from guessing. An
Algebra hop (QuickSwap V3) swaps like a V3 one and is paid in ``algebraSwapCallback``; the fee
the signal priced it at (``fees_pips``, the pool's fee in force) is what the check compares: a
fee recomputed at the block's first swap shows as a changed output (ExecutionReport CHANGED).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from eth_abi import decode as abi_decode

from alphapulse.chain.artifacts import function_codec, load_artifact
from alphapulse.protocol.layout import PoolKind

# An address no account uses: the executor's code is placed there for checks (state override or
# in-process EVM), so no deployment and no funds are needed. The caller is another such address.
CHECK_EXECUTOR = "0x00000000000000000000000000000000a1fa9e11"
CHECK_CALLER = "0x00000000000000000000000000000000a1fa9e12"
CHECK_GAS_LIMIT = 3_000_000

_KINDS = {"v2": int(PoolKind.CONSTANT_PRODUCT), "v3": int(PoolKind.CONCENTRATED),
          "algebra": int(PoolKind.CONCENTRATED_DYNAMIC_FEE)}


class UnknownVenue(ValueError):
    """A signal's pool belongs to a venue that no configured factory declares."""


@dataclass(frozen=True, slots=True)
class Hop:
    pool: str
    kind: int          # PoolKind
    token_in: str
    token_out: str
    fee_pips: int

    def as_tuple(self) -> tuple:
        return (self.pool, self.kind, self.token_in, self.token_out, self.fee_pips)


def _addr(b: Any) -> str:
    return "0x" + bytes(b).hex()


def venue_kinds(factories: Any) -> dict[int, int]:
    """venue -> PoolKind from the configured factories (``FactoryConfig`` or their dicts)."""
    out: dict[int, int] = {}
    for f in factories:
        venue, kind = (f["venue"], f["kind"]) if isinstance(f, Mapping) else (f.venue, f.kind)
        out[int(venue)] = _KINDS[kind]
    return out


def signal_hops(sig: Any, kinds: Mapping[int, int]) -> list[Hop]:
    """The hops of an ArbitrageSignal record, in order (pool i takes tokens[i], gives tokens[i+1])."""
    n = int(sig.hops)
    hops = []
    for i in range(n):
        venue = int(sig.venues[i])
        if venue not in kinds:
            raise UnknownVenue(f"venue {venue} of pool {_addr(sig.pools[i])} is not a configured factory")
        hops.append(Hop(_addr(sig.pools[i]), kinds[venue], _addr(sig.tokens[i]), _addr(sig.tokens[(i + 1) % n]),
                        int(sig.fees_pips[i])))
    return hops


def quote_calldata(hops: list[Hop], amount_in: int) -> bytes:
    """ArbExecutor.quote(hops, amountIn): returns (amountOut, gasUsed, ok)."""
    return bytes.fromhex(function_codec("ArbExecutor", "quote").encode([[h.as_tuple() for h in hops], amount_in])[2:])


def execute_calldata(hops: list[Hop], amount_in: int, min_profit: int) -> bytes:
    """ArbExecutor.execute(hops, amountIn, minProfit): the transaction's data."""
    return bytes.fromhex(function_codec("ArbExecutor", "execute").encode(
        [[h.as_tuple() for h in hops], amount_in, min_profit])[2:])


def decode_quote(data: bytes) -> tuple[int, int, bool]:
    out, gas, ok = abi_decode(["uint256", "uint256", "bool"], data)
    return int(out), int(gas), bool(ok)


def intrinsic_gas(data: bytes) -> int:
    """The transaction's intrinsic gas for ``data`` (21,000 + 16 per non-zero, 4 per zero byte)."""
    nz = sum(1 for b in data if b)
    return 21_000 + 16 * nz + 4 * (len(data) - nz)


def executor_runtime() -> bytes:
    """ArbExecutor's runtime code (what a state override places at CHECK_EXECUTOR)."""
    return bytes.fromhex(load_artifact("ArbExecutor").deployed_bytecode[2:])


def revert_reason(data: bytes) -> str:
    """A short reason from revert data: Error(string), a known custom error, or its selector."""
    if len(data) >= 4 and data[:4] == bytes.fromhex("08c379a0"):
        try:
            return abi_decode(["string"], data[4:])[0]
        except Exception:
            return "Error(?)"
    name = _error_names().get(bytes(data[:4]))
    if name:
        return name
    return "0x" + bytes(data[:4]).hex() if data else "empty revert"


def _error_names() -> dict[bytes, str]:
    global _ERRORS
    if _ERRORS is None:
        from eth_utils import keccak
        errs = {}
        for e in load_artifact("ArbExecutor").abi:
            if e.get("type") == "error":
                sig = f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
                errs[keccak(text=sig)[:4]] = e["name"]
        _ERRORS = errs
    return _ERRORS


_ERRORS: dict[bytes, str] | None = None
