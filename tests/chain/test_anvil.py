"""The anvil launcher: starts on loopback, answers, stops without leftovers, survives a restart
from a dumped state, and never outlives its owner."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphapulse.chain.anvil import DEV_ACCOUNTS, DEV_PRIVATE_KEYS, Anvil, AnvilError, AnvilNotFound, find_anvil_binary

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_missing_install_names_the_install_command(tmp_path):
    with pytest.raises(AnvilNotFound, match="npm ci --prefix evm"):
        find_anvil_binary(tmp_path)


def test_starts_on_loopback_with_polygon_chain_id_and_stops_cleanly():
    node = Anvil().start()
    pid, home = node.pid, node.home
    try:
        assert node.rpc("eth_chainId") == hex(137)
        assert node.http_url.startswith("http://127.0.0.1:") and node.ws_url.startswith("ws://127.0.0.1:")
        assert f"Listening on 127.0.0.1:{node.port}" in node.log_tail(400)
        assert home.is_dir() and home.name.startswith("alphapulse-anvil-")
        # the private HOME keeps no per-block state files (--prune-history)
        node.mine(20)
        assert not (home / ".foundry" / "anvil" / "tmp").exists() or not any((home / ".foundry" / "anvil" / "tmp").rglob("*.json"))
    finally:
        node.stop()
    assert _wait_dead(pid)
    assert not home.exists()
    assert not node.running
    node.stop()  # idempotent


def test_context_manager_and_custom_chain_id():
    with Anvil(chain_id=31337) as node:
        pid = node.pid
        assert int(node.rpc("eth_chainId"), 16) == 31337
    assert _wait_dead(pid)


def test_taken_port_is_a_clear_error(anvil):
    with pytest.raises(AnvilError, match="Address already in use"):
        Anvil(port=anvil.port, startup_timeout=5).start()


def test_no_mining_mode_mines_only_on_request(anvil_factory):
    node = anvil_factory(no_mining=True)
    node.rpc("eth_sendTransaction", [{"from": DEV_ACCOUNTS[0], "to": DEV_ACCOUNTS[1], "value": "0x1"}])
    time.sleep(0.2)
    assert node.block_number() == 0
    node.mine()
    assert node.block_number() == 1


def test_block_time_mines_on_an_interval(anvil_factory):
    node = anvil_factory(block_time=0.1)
    deadline = time.monotonic() + 5
    while node.block_number() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.block_number() >= 3


def test_restart_from_dumped_state_keeps_blocks_hashes_and_balances(anvil_factory, tmp_path):
    node = anvil_factory()
    target = "0x00000000000000000000000000000000ABCDef01"
    h = node.rpc("eth_sendTransaction", [{"from": DEV_ACCOUNTS[0], "to": target, "value": hex(12345)}])
    deadline = time.monotonic() + 5
    while node.rpc("eth_getTransactionReceipt", [h]) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    node.mine(3)
    head = node.rpc("eth_getBlockByNumber", ["latest", False])
    tx_block = node.rpc("eth_getTransactionReceipt", [h])["blockHash"]
    state = node.dump_state(tmp_path / "state.json")
    assert json.loads(state.read_text())["best_block_number"] == int(head["number"], 16)
    port, old_pid = node.port, node.pid

    node.restart(load_state=state)
    assert node.port == port and node.pid != old_pid and _wait_dead(old_pid)
    assert node.rpc("eth_getBlockByNumber", ["latest", False])["hash"] == head["hash"]
    assert node.rpc("eth_getTransactionReceipt", [h])["blockHash"] == tx_block
    assert int(node.rpc("eth_getBalance", [target, "latest"]), 16) == 12345
    node.mine()
    new_head = node.rpc("eth_getBlockByNumber", ["latest", False])
    assert int(new_head["number"], 16) == int(head["number"], 16) + 1
    assert new_head["parentHash"] == head["hash"]

    node.restart()  # without a state: a new chain from block 0
    assert node.block_number() == 0
    assert int(node.rpc("eth_getBalance", [target, "latest"]), 16) == 0


def test_load_state_into_a_running_node(anvil_factory, tmp_path):
    a = anvil_factory()
    target = "0x00000000000000000000000000000000ABCDef02"
    h = a.rpc("eth_sendTransaction", [{"from": DEV_ACCOUNTS[0], "to": target, "value": hex(777)}])
    while a.rpc("eth_getTransactionReceipt", [h]) is None:
        time.sleep(0.005)
    state = a.dump_state(tmp_path / "s.json")
    b = anvil_factory()
    assert int(b.rpc("eth_getBalance", [target, "latest"]), 16) == 0
    b.load_state(state)
    assert int(b.rpc("eth_getBalance", [target, "latest"]), 16) == 777


def test_snapshot_revert_restores_the_chain(anvil_factory):
    node = anvil_factory()
    snap = node.snapshot()
    node.mine(5)
    assert node.block_number() == 5
    node.revert(snap)
    assert node.block_number() == 0


_OWNER = """
import sys, time
from alphapulse.chain.anvil import Anvil
node = Anvil().start()
print(node.pid, node.home, flush=True)
sys.stdin.readline()     # the test has seen the node alive
if sys.argv[1] == "exit":
    sys.exit(0)          # no stop(): the atexit hook must do it
time.sleep(60)           # killed by the test
"""


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_node_dies_with_its_owner(how):
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, how], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=REPO)
    home = None
    try:
        pid_s, home = owner.stdout.readline().split()
        pid = int(pid_s)
        assert _alive(pid)
        owner.stdin.write("go\n")
        owner.stdin.flush()
        if how == "sigkill":
            owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        assert _wait_dead(pid), f"anvil {pid} outlived its owner ({how})"
        if how == "exit":
            assert not Path(home).exists()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if how == "sigkill" and home:      # a killed owner cannot delete its node's home: the test does
            shutil.rmtree(home, ignore_errors=True)


def test_anvil_reorg_replaces_blocks_with_the_default_prune_history(anvil_factory):
    node = anvil_factory()   # --prune-history 100 (a bare --prune-history breaks anvil_reorg)
    node.mine(6)
    old = [node.rpc("eth_getBlockByNumber", [hex(n), False])["hash"] for n in range(7)]
    node.rpc("anvil_reorg", [2, []])
    new = [node.rpc("eth_getBlockByNumber", [hex(n), False])["hash"] for n in range(7)]
    assert node.block_number() == 6
    assert new[:5] == old[:5] and new[5] != old[5] and new[6] != old[6]


def test_dev_private_keys_belong_to_the_dev_accounts(anvil):
    from eth_account import Account
    assert [Account.from_key(k).address for k in DEV_PRIVATE_KEYS] == list(DEV_ACCOUNTS)
    assert [a.lower() for a in anvil.rpc("eth_accounts")] == [a.lower() for a in DEV_ACCOUNTS]


def test_ws_url_serves_subscriptions(anvil_factory):
    import asyncio
    from web3 import AsyncWeb3, WebSocketProvider

    node = anvil_factory()

    async def heads() -> list[int]:
        async with AsyncWeb3(WebSocketProvider(node.ws_url)) as w3:
            assert await w3.eth.chain_id == 137
            await w3.eth.subscribe("newHeads")
            await asyncio.to_thread(node.mine, 3)
            got = []
            async for msg in w3.socket.process_subscriptions():
                got.append(msg["result"]["number"])
                if len(got) == 3:
                    return got

    assert asyncio.run(asyncio.wait_for(heads(), 10)) == [1, 2, 3]


def test_chain_fixtures_fail_not_skip_without_the_install(monkeypatch, tmp_path):
    import alphapulse.chain.anvil as anvil_mod
    from tests.conftest import _start_node
    monkeypatch.setattr(anvil_mod, "default_evm_dir", lambda: tmp_path)
    with pytest.raises(pytest.fail.Exception, match="npm ci --prefix evm"):
        _start_node()
