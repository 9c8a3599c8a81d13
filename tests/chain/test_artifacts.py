"""Artifacts: the committed test-contract JSON is exactly what the committed Solidity compiles
to, and the npm Uniswap builds are the ones whose init-code hashes the periphery hard-codes."""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_utils import keccak

from alphapulse.chain.artifacts import (LOCAL_ARTIFACT_DIR, LOCAL_ARTIFACTS, V2_PAIR_INIT_CODE_HASH,
                                        V3_POOL_INIT_CODE_HASH, ArtifactNotFound, function_codec, load_artifact)

REPO = Path(__file__).resolve().parents[2]


def test_committed_artifacts_equal_a_fresh_compile(tmp_path):
    node = shutil.which("node")
    assert node, "node is required (it runs npm ci for the local chain)"
    subprocess.run([node, str(REPO / "evm" / "compile.js"), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    for name in LOCAL_ARTIFACTS:
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((LOCAL_ARTIFACT_DIR / f"{name}.json").read_text())
        assert fresh == committed, f"{name}.json is stale: run `node evm/compile.js`"


def test_committed_artifacts_carry_the_hash_of_their_committed_source():
    for name in LOCAL_ARTIFACTS:
        art = json.loads((LOCAL_ARTIFACT_DIR / f"{name}.json").read_text())
        source = (REPO / art["sourceName"]).read_bytes()
        assert art["sourceSha256"] == hashlib.sha256(source).hexdigest(), f"{name}.json is stale: run `node evm/compile.js`"
        assert art["compiler"].startswith("solc-js 0.8.28+"), art["compiler"]
        assert load_artifact(name).deployed_bytecode.startswith("0x") and len(load_artifact(name).deployed_bytecode) > 2


def test_uniswap_init_code_hashes_match_the_periphery_constants():
    assert "0x" + keccak(hexstr=load_artifact("UniswapV2Pair").bytecode).hex() == V2_PAIR_INIT_CODE_HASH
    assert "0x" + keccak(hexstr=load_artifact("UniswapV3Pool").bytecode).hex() == V3_POOL_INIT_CODE_HASH


def test_unknown_or_missing_artifacts_are_clear_errors(tmp_path):
    with pytest.raises(ArtifactNotFound, match="unknown artifact"):
        load_artifact("NoSuchContract")
    with pytest.raises(ArtifactNotFound, match="npm ci --prefix evm"):
        load_artifact("UniswapV2Factory", tmp_path)


def test_function_codec_encodes_like_the_abi():
    codec = function_codec("TestToken", "transfer")
    assert codec.selector == "0xa9059cbb"
    data = codec.encode(["0x" + "11" * 20, 5])
    assert data == "0xa9059cbb" + "00" * 12 + "11" * 20 + "%064x" % 5
    assert function_codec("UniswapV2Pair", "getReserves").output_types == ("uint112", "uint112", "uint32")
    with pytest.raises(TypeError):
        codec.encode([1])
