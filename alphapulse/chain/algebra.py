"""Algebra v1.0 (QuickSwap V3's protocol) on the local chain, from the npm artifacts of
``@cryptoalgebra/core`` (see ``alphapulse.jit.amm_algebra`` for the version and its math).

The artifacts are an unoptimised build: AlgebraPool and AlgebraPoolDeployer exceed EIP-170's
24,576 bytes, so the node must run with ``ANVIL_ARGS`` (code-size limit lifted, a block gas
limit that holds a pool creation). Liquidity is added and swaps are made through the committed
``AlgebraCaller`` test contract (the pool's ``algebraMintCallback`` / ``algebraSwapCallback``).

    node = Anvil(extra_args=ANVIL_ARGS, gas_limit=ALGEBRA_GAS_LIMIT).start()
    alg = deploy_algebra(node.http_url)
    pool = alg.create_pool("TKA", "TKB", sqrt_price_x96)
    alg.mint(pool, -600, 600, 10**21)
    rc, swap = alg.swap(pool, zero_to_one=True, amount_required=10**18)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import rlp
from eth_abi import decode as abi_decode
from eth_utils import keccak
from web3 import Web3

from alphapulse.chain.anvil import DEV_ACCOUNTS
from alphapulse.chain.artifacts import function_codec, load_artifact
from alphapulse.chain.deploy import connect
from alphapulse.chain.txs import TxSender, encode_deploy

__all__ = ["IntegralMarket", "deploy_integral", "ANVIL_ARGS", "ALGEBRA_GAS_LIMIT", "AlgebraMarket", "AlgebraPoolState", "AlgebraSwap",
           "SWAP_TOPIC", "FEE_TOPIC", "QUICKSWAP_POOL_INIT_CODE_HASH", "deploy_algebra"]

ANVIL_ARGS: tuple[str, ...] = ("--disable-code-size-limit",)
ALGEBRA_GAS_LIMIT = 100_000_000
GAS_DEPLOY = 30_000_000
GAS_CALL = 3_000_000
MAX_UINT = (1 << 256) - 1

# PoolAddress.POOL_INIT_CODE_HASH of Algebra v1.0 as hard-coded in AlgebraFactory.computeAddress
# (npm @cryptoalgebra/core 2.0.0) and used by QuickSwap V3's Polygon periphery.
QUICKSWAP_POOL_INIT_CODE_HASH = "0x6ec6c9c8091d160c0aa74b2b14ba9c1717e95093bd3ac085cee99a49aab294a4"
SWAP_TOPIC = "0x" + keccak(text="Swap(address,address,int256,int256,uint160,uint128,int24)").hex()
FEE_TOPIC = "0x" + keccak(text="Fee(uint16)").hex()


@dataclass(frozen=True)
class AlgebraPoolState:
    """What the kernel needs from a pool: globalState's price, tick and fee in force, the active
    liquidity and the initialised ticks with their ``liquidityDelta``."""
    price: int
    tick: int
    fee: int
    liquidity: int
    ticks: tuple[int, ...]
    nets: tuple[int, ...]


@dataclass(frozen=True)
class AlgebraSwap:
    """A pool's own account of one swap: its Swap event and, when the swap recomputed the fee
    (the first swap of a new block timestamp), the Fee event's value."""
    amount0: int
    amount1: int
    price: int
    liquidity: int
    tick: int
    fee_event: int | None


@dataclass
class AlgebraMarket:
    w3: Web3
    tx: TxSender
    deployer: str
    factory: str
    pool_deployer: str
    caller: str
    tokens: dict[str, str]
    pool_contract = "AlgebraPool"
    pools: dict[tuple[str, str], str] = field(default_factory=dict)
    _ticks: dict[str, set[int]] = field(default_factory=dict)

    # -------------------------------------------------------------- transactions
    def _call_tx(self, contract: str, to: str, fn: str, args: Sequence, sender: str | None = None,
                 gas: int = GAS_CALL) -> dict:
        return self.tx.tx(sender or self.deployer, to, function_codec(contract, fn).encode(args), gas)

    def read(self, contract: str, to: str, fn: str, args: Sequence = (), block: int | str = "latest") -> tuple:
        codec = function_codec(contract, fn)
        return codec.decode(self.w3.eth.call({"to": to, "data": codec.encode(args)}, block))

    def create_pool(self, token_a: str, token_b: str, price: int) -> str:
        """A pool for two of the market's tokens, initialised at sqrt price ``price`` (Q64.96)."""
        a, b = self.tokens[token_a], self.tokens[token_b]
        self.tx.transact(self._call_tx("AlgebraFactory", self.factory, "createPool", [a, b], gas=GAS_DEPLOY),
                         "createPool")
        pool = self.read("AlgebraFactory", self.factory, "poolByPair", [a, b])[0]
        pool = Web3.to_checksum_address(pool)
        self._repoint_data_storage(pool)
        self.tx.transact(self._call_tx(self.pool_contract, pool, "initialize", [price]), "initialize")
        self.pools[(token_a, token_b)] = pool
        self._ticks[pool] = set()
        return pool

    def _repoint_data_storage(self, pool: str) -> None:
        """The factory creates each pool's DataStorageOperator for the address
        ``computeAddress(token0, token1)``: CREATE2 from the pool deployer with the init code hash of
        the optimised build deployed on Polygon (``QUICKSWAP_POOL_INIT_CODE_HASH``). The npm pool
        bytecode hashes differently, so the pool lands elsewhere and the operator's immutable
        ``pool`` (the only caller it accepts) is wrong. This rewrites that immutable in the
        operator's runtime code (anvil_setCode) to the real pool; nothing else changes."""
        operator = Web3.to_checksum_address(self.read("AlgebraPool", pool, "dataStorageOperator")[0])
        t0 = self.read("AlgebraPool", pool, "token0")[0]
        t1 = self.read("AlgebraPool", pool, "token1")[0]
        salt = keccak(bytes.fromhex(t0[2:].rjust(64, "0") + t1[2:].rjust(64, "0")))
        expected = keccak(b"\xff" + bytes.fromhex(self.pool_deployer[2:]) + salt +
                          bytes.fromhex(QUICKSWAP_POOL_INIT_CODE_HASH[2:]))[12:].hex()
        code = bytes(self.w3.eth.get_code(operator)).hex()
        word = expected.rjust(64, "0")
        if expected == pool[2:].lower():
            return
        if word not in code:
            raise RuntimeError(f"DataStorageOperator {operator}: the computed pool address is not in its code")
        code = code.replace(word, pool[2:].lower().rjust(64, "0"))
        self.w3.provider.make_request("anvil_setCode", [operator, "0x" + code])

    def mint(self, pool: str, bottom: int, top: int, liquidity: int, sender: str | None = None) -> tuple[int, int]:
        """Adds ``liquidity`` on [bottom, top] (multiples of 60), paid by ``sender``."""
        rc = self.tx.transact(self._call_tx("AlgebraCaller", self.caller, "mint", [pool, bottom, top, liquidity],
                                            sender), "mint")
        self._ticks.setdefault(pool, set()).update((bottom, top))
        return rc

    def swap_tx(self, pool: str, zero_to_one: bool, amount_required: int, limit: int, sender: str | None = None) -> dict:
        """The swap transaction: ``amount_required`` > 0 exact input, < 0 exact output."""
        return self._call_tx("AlgebraCaller", self.caller, "swap", [pool, zero_to_one, amount_required, limit], sender)

    def swap_result(self, pool: str, rc) -> AlgebraSwap:
        """The pool's Swap (and Fee) event of a receipt holding one swap of ``pool``."""
        swap = None
        fee = None
        for log in rc["logs"]:
            if Web3.to_checksum_address(log["address"]) != pool:
                continue
            topic = "0x" + bytes(log["topics"][0]).hex()
            if topic == SWAP_TOPIC:
                a0, a1, price, liq, tick = abi_decode(["int256", "int256", "uint160", "uint128", "int24"],
                                                      bytes(log["data"]))
                swap = (a0, a1, price, liq, tick)
            elif topic == FEE_TOPIC:
                fee = abi_decode(["uint16"], bytes(log["data"]))[0]
        if swap is None:
            raise ValueError(f"no Swap event of {pool} in the receipt")
        return AlgebraSwap(*swap, fee_event=fee)

    def fund(self, account: str, amount: int = 10**40) -> None:
        """Mints every token to ``account`` and approves the caller contract for them."""
        txs = []
        for t in self.tokens.values():
            txs.append(self.tx.tx(self.deployer, t, function_codec("TestToken", "mint").encode([account, amount]),
                                  100_000))
            txs.append(self.tx.tx(account, t, function_codec("TestToken", "approve").encode([self.caller, MAX_UINT]),
                                  100_000))
        self.tx.batch(txs)

    def set_fee_configuration(self, pool: str, alpha1: int, alpha2: int, beta1: int, beta2: int, gamma1: int,
                              gamma2: int, volume_beta: int, volume_gamma: int, base_fee: int) -> None:
        """Changes one pool's adaptive-fee configuration (DataStorageOperator.changeFeeConfiguration,
        which only the factory may call: sent from the factory's address, impersonated). The pool
        applies it at its next fee computation, the first swap of a new block timestamp."""
        operator = Web3.to_checksum_address(self.read("AlgebraPool", pool, "dataStorageOperator")[0])
        self.w3.provider.make_request("anvil_impersonateAccount", [self.factory])
        self.w3.provider.make_request("anvil_setBalance", [self.factory, hex(10**20)])
        try:
            cfg = (alpha1, alpha2, beta1, beta2, gamma1, gamma2, volume_beta, volume_gamma, base_fee)
            self.tx.transact(self._call_tx("DataStorageOperator", operator, "changeFeeConfiguration", [cfg],
                                           sender=self.factory), "changeFeeConfiguration")
        finally:
            self.w3.provider.make_request("anvil_stopImpersonatingAccount", [self.factory])

    # -------------------------------------------------------------- state
    def pool_state(self, pool: str, block: int | str = "latest") -> AlgebraPoolState:
        """globalState, liquidity and the ticks minted through this market (their liquidityDelta),
        read at ``block``; ticks whose liquidity went back to zero are left out."""
        gs = self.read(self.pool_contract, pool, "globalState", (), block)
        liq = self.read(self.pool_contract, pool, "liquidity", (), block)[0]
        ticks, nets = [], []
        for t in sorted(self._ticks.get(pool, ())):
            info = self.read(self.pool_contract, pool, "ticks", [t], block)
            if info[0] != 0:           # liquidityTotal: the tick is initialised
                ticks.append(t)
                nets.append(info[1])
        return AlgebraPoolState(price=gs[0], tick=gs[1], fee=gs[2], liquidity=liq, ticks=tuple(ticks),
                                nets=tuple(nets))

    def tick_table_word(self, pool: str, word: int, block: int | str = "latest") -> int:
        return self.read(self.pool_contract, pool, "tickTable", [word], block)[0]


@dataclass
class IntegralMarket(AlgebraMarket):
    """Algebra Integral 1.2 pools (no plugin: the fee in force is ``globalState.lastFee``)."""
    pool_contract = "IntegralPool"

    def create_pool(self, token_a: str, token_b: str, price: int) -> str:
        a, b = self.tokens[token_a], self.tokens[token_b]
        self.tx.transact(self._call_tx("IntegralFactory", self.factory, "createPool", [a, b, b""], gas=GAS_DEPLOY),
                         "createPool")
        pool = Web3.to_checksum_address(self.read("IntegralFactory", self.factory, "poolByPair", [a, b])[0])
        self.tx.transact(self._call_tx("IntegralPool", pool, "initialize", [price]), "initialize")
        self.pools[(token_a, token_b)] = pool
        self._ticks[pool] = set()
        return pool

    def set_fee(self, pool: str, fee: int) -> None:
        """``setFee`` by the pool's administrator (the factory owner; no dynamic-fee plugin)."""
        self.tx.transact(self._call_tx("IntegralPool", pool, "setFee", [fee]), "setFee")

    def set_tick_spacing(self, pool: str, spacing: int) -> None:
        self.tx.transact(self._call_tx("IntegralPool", pool, "setTickSpacing", [spacing]), "setTickSpacing")

    def tick_links(self, pool: str, tick: int, block: int | str = "latest") -> tuple[int, int]:
        """(prevTick, nextTick) of an initialised tick: Integral's linked list."""
        info = self.read("IntegralPool", pool, "ticks", [tick], block)
        return info[2], info[3]


def _create_address(sender: str, nonce: int) -> str:
    return Web3.to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def deploy_integral(w3_or_url: "Web3 | str", token_symbols: Sequence[str] = ("TKA", "TKB"), *,
                    deployer: str = DEV_ACCOUNTS[0]) -> IntegralMarket:
    """Deploys Algebra Integral 1.2 (AlgebraFactory and AlgebraPoolDeployer, which name each other
    in their constructors: the factory's address is predicted from the deployer's nonce; no vault
    factory, no default plugin), AlgebraCaller and 18-decimal TestTokens, and funds the deployer."""
    w3 = connect(w3_or_url) if isinstance(w3_or_url, str) else w3_or_url
    tx = TxSender(w3, w3.eth.chain_id)
    deployer = Web3.to_checksum_address(deployer)

    def deploy(name: str, *args) -> str:
        art = load_artifact(name)
        rc = tx.transact(tx.tx(deployer, None, encode_deploy(w3, art.abi, art.bytecode, args), GAS_DEPLOY), name)
        return Web3.to_checksum_address(rc["contractAddress"])

    nonce = w3.eth.get_transaction_count(deployer)
    factory_at = _create_address(deployer, nonce + 1)
    pool_deployer = deploy("IntegralPoolDeployer", factory_at)
    factory = deploy("IntegralFactory", pool_deployer)
    if factory != factory_at:
        raise RuntimeError(f"Integral factory at {factory}, expected {factory_at}")
    caller = deploy("AlgebraCaller")
    tokens = {s: deploy("TestToken", s, s, 18) for s in token_symbols}
    market = IntegralMarket(w3=w3, tx=tx, deployer=deployer, factory=factory, pool_deployer=pool_deployer,
                            caller=caller, tokens=tokens)
    market.fund(deployer)
    return market


def deploy_algebra(w3_or_url: "Web3 | str", token_symbols: Sequence[str] = ("TKA", "TKB"), *,
                   deployer: str = DEV_ACCOUNTS[0], tokens: "dict[str, str] | None" = None) -> AlgebraMarket:
    """Deploys AlgebraPoolDeployer, AlgebraFactory (vault = the deployer), AlgebraCaller and 18-decimal
    TestTokens onto a node started with ``ANVIL_ARGS``, and funds the deployer. With ``tokens``
    (symbol -> address of tokens already deployed, e.g. a :class:`~alphapulse.chain.deploy.Market`'s)
    no token is deployed nor funded: the caller funds the deployer and approves ``caller``."""
    w3 = connect(w3_or_url) if isinstance(w3_or_url, str) else w3_or_url
    tx = TxSender(w3, w3.eth.chain_id)
    deployer = Web3.to_checksum_address(deployer)

    def deploy(name: str, *args) -> str:
        art = load_artifact(name)
        rc = tx.transact(tx.tx(deployer, None, encode_deploy(w3, art.abi, art.bytecode, args), GAS_DEPLOY), name)
        return Web3.to_checksum_address(rc["contractAddress"])

    pool_deployer = deploy("AlgebraPoolDeployer")
    factory = deploy("AlgebraFactory", pool_deployer, deployer)
    tx.transact(tx.tx(deployer, pool_deployer, function_codec("AlgebraPoolDeployer", "setFactory").encode([factory]),
                      GAS_CALL), "setFactory")
    caller = deploy("AlgebraCaller")
    own = tokens is None
    if own:
        tokens = {s: deploy("TestToken", s, s, 18) for s in token_symbols}
    market = AlgebraMarket(w3=w3, tx=tx, deployer=deployer, factory=factory, pool_deployer=pool_deployer,
                           caller=caller, tokens=dict(tokens))
    if own:
        market.fund(deployer)
    return market
