"""Contract artifacts (ABI + creation bytecode) for the local chain.

Uniswap V2/V3 come precompiled from the npm packages pinned in ``evm/package.json`` (installed
by ``npm ci --prefix evm``); AlphaPulse's own test contracts (TestToken, RevertingDecimalsToken,
CycleExecutor) are committed next to their sources in ``alphapulse/chain/artifacts/``
(regenerate with ``node evm/compile.js``). Nothing is compiled at test time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from alphapulse.chain.anvil import INSTALL_HINT, default_evm_dir

__all__ = ["Artifact", "ArtifactNotFound", "FunctionCodec", "function_codec", "load_artifact", "UNISWAP_ARTIFACTS", "LOCAL_ARTIFACTS",
           "LOCAL_ARTIFACT_DIR", "V2_PAIR_INIT_CODE_HASH", "V3_POOL_INIT_CODE_HASH"]

LOCAL_ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"

# name -> path under evm/node_modules
UNISWAP_ARTIFACTS: dict[str, str] = {
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
    "DeflatingERC20": "@uniswap/v2-periphery/build/DeflatingERC20.json",
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NonfungiblePositionManager":
        "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
    "TickLens": "@uniswap/v3-periphery/artifacts/contracts/lens/TickLens.sol/TickLens.json",
    # Algebra v1.0 (QuickSwap V3 on Polygon), @cryptoalgebra/core 2.0.0: an unoptimised build whose
    # pool and deployer exceed EIP-170, so the node runs with its code-size limit lifted.
    "AlgebraFactory": "@cryptoalgebra/core/artifacts/contracts/AlgebraFactory.sol/AlgebraFactory.json",
    "AlgebraPoolDeployer": "@cryptoalgebra/core/artifacts/contracts/AlgebraPoolDeployer.sol/AlgebraPoolDeployer.json",
    "AlgebraPool": "@cryptoalgebra/core/artifacts/contracts/AlgebraPool.sol/AlgebraPool.json",
    "DataStorageOperator": "@cryptoalgebra/core/artifacts/contracts/DataStorageOperator.sol/DataStorageOperator.json",
    # Algebra Integral 1.2 (QuickSwap's newer Polygon factory), @cryptoalgebra/integral-core 1.2.10
    "IntegralFactory": "@cryptoalgebra/integral-core/artifacts/contracts/AlgebraFactory.sol/AlgebraFactory.json",
    "IntegralPoolDeployer":
        "@cryptoalgebra/integral-core/artifacts/contracts/AlgebraPoolDeployer.sol/AlgebraPoolDeployer.json",
    "IntegralPool": "@cryptoalgebra/integral-core/artifacts/contracts/AlgebraPool.sol/AlgebraPool.json",
}
LOCAL_ARTIFACTS: tuple[str, ...] = ("TestToken", "RevertingDecimalsToken", "CycleExecutor", "ArbExecutor", "AlgebraCaller")

# keccak256 of the creation bytecode, as hard-coded in UniswapV2Library.pairFor and
# PoolAddress.POOL_INIT_CODE_HASH; deployments derive pool addresses with CREATE2 from these.
V2_PAIR_INIT_CODE_HASH = "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"
V3_POOL_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"


class ArtifactNotFound(FileNotFoundError):
    """An artifact file is missing (npm packages not installed, or an unknown name)."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list
    bytecode: str  # 0x-prefixed creation code
    path: Path
    deployed_bytecode: str = ""  # 0x-prefixed runtime code (empty when the artifact lacks it)


@lru_cache(maxsize=None)
def load_artifact(name: str, evm_dir: Path | None = None) -> Artifact:
    """ABI and creation bytecode of a contract by name (see UNISWAP_ARTIFACTS / LOCAL_ARTIFACTS)."""
    if name in UNISWAP_ARTIFACTS:
        path = (evm_dir or default_evm_dir()) / "node_modules" / UNISWAP_ARTIFACTS[name]
        if not path.is_file():
            raise ArtifactNotFound(f"Uniswap artifact {name} not found at {path}: {INSTALL_HINT}")
    elif name in LOCAL_ARTIFACTS:
        path = LOCAL_ARTIFACT_DIR / f"{name}.json"
        if not path.is_file():
            raise ArtifactNotFound(f"artifact {name} missing at {path}: regenerate with `node evm/compile.js`")
    else:
        raise ArtifactNotFound(f"unknown artifact {name!r}; known: {sorted(UNISWAP_ARTIFACTS) + list(LOCAL_ARTIFACTS)}")
    data = json.loads(path.read_text())
    bytecode = data["bytecode"]
    if isinstance(bytecode, dict):  # truffle/solc standard-json shape
        bytecode = bytecode["object"]
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    if len(bytecode) <= 2:
        raise ArtifactNotFound(f"artifact {name} at {path} has no bytecode (interface?)")
    runtime = data.get("deployedBytecode") or ""
    if isinstance(runtime, dict):
        runtime = runtime.get("object", "")
    if runtime and not runtime.startswith("0x"):
        runtime = "0x" + runtime
    return Artifact(name=name, abi=data["abi"], bytecode=bytecode, path=path, deployed_bytecode=runtime)


@dataclass(frozen=True)
class FunctionCodec:
    """Selector and ABI types of one contract function: encodes calls and decodes results with
    eth_abi directly (web3's per-call ABI lookup costs ~1 ms; this costs microseconds)."""
    name: str
    selector: str          # 0x + 8 hex digits
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    def encode(self, args: Sequence = ()) -> str:
        if len(args) != len(self.input_types):
            raise TypeError(f"{self.name} takes {len(self.input_types)} arguments, got {len(args)}")
        return self.selector + (abi_encode(list(self.input_types), list(args)).hex() if self.input_types else "")

    def decode(self, data: bytes) -> tuple:
        return tuple(abi_decode(list(self.output_types), data))


def _canonical_type(param: dict) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in param["components"]) + ")" + t[5:]
    return t


@lru_cache(maxsize=None)
def function_codec(contract: str, function: str) -> FunctionCodec:
    """Codec of ``contract``'s function named ``function`` (must not be overloaded)."""
    entries = [e for e in load_artifact(contract).abi if e.get("type") == "function" and e.get("name") == function]
    if len(entries) != 1:
        raise KeyError(f"{contract}.{function}: {len(entries)} ABI entries (need exactly one)")
    e = entries[0]
    ins = tuple(_canonical_type(p) for p in e["inputs"])
    outs = tuple(_canonical_type(p) for p in e.get("outputs", []))
    selector = "0x" + keccak(text=f"{function}({','.join(ins)})").hex()[:8]
    return FunctionCodec(f"{contract}.{function}", selector, ins, outs)
