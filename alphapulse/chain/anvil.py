"""Run a local anvil node (Foundry) for tests, the local-chain pipeline source and recordings.

The anvil binary ships inside the npm package ``@foundry-rs/anvil-<os>-<arch>`` installed by
``npm ci --prefix evm``; it is run directly (the npm wrapper adds 0.4 s and 58 MB). Every node
binds 127.0.0.1 only, gets a private temporary HOME (anvil otherwise writes a state file per
block under ``~/.foundry``) and keeps at most ``prune_history`` states in memory.

A node never outlives its owner: ``stop()`` terminates it (kill after a grace period), an
``atexit`` hook stops every node still running at interpreter exit, and on Linux the child is
started with ``PR_SET_PDEATHSIG`` = SIGKILL so even a SIGKILLed owner takes it down.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import gzip
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "Anvil",
    "AnvilError",
    "AnvilNotFound",
    "DEV_ACCOUNTS",
    "DEV_PRIVATE_KEYS",
    "EVM_DIR",
    "default_evm_dir",
    "INSTALL_HINT",
    "find_anvil_binary",
    "free_port",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
EVM_DIR = REPO_ROOT / "evm"   # the checkout this package lives in (editable install)


def default_evm_dir() -> Path:
    """Where ``npm ci --prefix evm`` put node_modules: next to this package's checkout, else
    ``./evm`` of the working directory (a non-editable install run from the repository)."""
    for candidate in (EVM_DIR, Path.cwd() / "evm"):
        if (candidate / "node_modules").is_dir():
            return candidate
    return EVM_DIR
INSTALL_HINT = "run `npm ci --prefix evm` (or `bash scripts/install.sh`) at the repository root"

# anvil's default mnemonic ("test test ... junk"): the first ten dev accounts and their keys.
DEV_ACCOUNTS: tuple[str, ...] = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
)
DEV_PRIVATE_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)

_LOG_LINES = 400

_PLATFORM_PACKAGES = {
    ("linux", "x86_64"): "anvil-linux-amd64",
    ("linux", "amd64"): "anvil-linux-amd64",
    ("linux", "aarch64"): "anvil-linux-arm64",
    ("linux", "arm64"): "anvil-linux-arm64",
    ("darwin", "x86_64"): "anvil-darwin-amd64",
    ("darwin", "arm64"): "anvil-darwin-arm64",
}


class AnvilNotFound(RuntimeError):
    """The anvil binary is not installed where AlphaPulse looks for it."""


class AnvilError(RuntimeError):
    """anvil did not start, died, or answered an RPC call with an error."""


def find_anvil_binary(evm_dir: Path | str | None = None) -> Path:
    """Path of the platform's anvil binary inside ``<evm_dir>/node_modules/@foundry-rs/``."""
    evm = Path(evm_dir) if evm_dir is not None else default_evm_dir()
    key = (sys.platform if sys.platform != "linux2" else "linux", platform.machine().lower())
    package = _PLATFORM_PACKAGES.get(key)
    if package is None:
        raise AnvilNotFound(
            f"no anvil build for platform {key[0]}/{key[1]} in @foundry-rs/anvil 1.7.1 "
            f"(supported: {sorted({p for p in _PLATFORM_PACKAGES.values()})})")
    binary = evm / "node_modules" / "@foundry-rs" / package / "bin" / "anvil"
    if not binary.is_file():
        raise AnvilNotFound(f"anvil binary not found at {binary}: {INSTALL_HINT}")
    if not os.access(binary, os.X_OK):
        raise AnvilNotFound(f"anvil binary at {binary} is not executable: {INSTALL_HINT}")
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS reports free right now (another process may still take it: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_live_nodes: "weakref.WeakSet[Anvil]" = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for node in list(_live_nodes):
        try:
            node.stop()
        except Exception:  # interpreter is exiting: best effort, never mask the real exit
            pass


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Anvil:
    """One anvil process on 127.0.0.1.

    Parameters mirror anvil's flags: ``chain_id`` (137 looks like Polygon), ``block_time``
    (seconds, float; None = automine each tx), ``no_mining`` (mine only on ``evm_mine``),
    ``prune_history`` (states kept in memory; 100 keeps ``anvil_reorg`` working), ``gas_limit``
    (block gas limit; default 30M), ``order`` (mempool order, "fifo" keeps a block's txs in the
    order they were sent), ``load_state`` (a state file from ``dump_state``), ``genesis_timestamp``
    (unix seconds of block 0; with ``set_block_timestamp_interval`` the chain is reproducible).

    Use as a context manager or call ``start()``/``stop()``.
    """

    def __init__(
        self,
        *,
        chain_id: int = 137,
        port: int | None = None,
        block_time: float | None = None,
        no_mining: bool = False,
        prune_history: int | None = 100,
        gas_limit: int | None = None,
        accounts: int = 10,
        balance_eth: int = 10_000,
        order: str = "fifo",
        load_state: Path | str | None = None,
        genesis_timestamp: int | None = None,
        binary: Path | str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        if block_time is not None and no_mining:
            raise ValueError("block_time and no_mining are exclusive")
        if block_time is not None and block_time <= 0:
            raise ValueError(f"block_time must be > 0 seconds, got {block_time}")
        self.binary = Path(binary) if binary is not None else find_anvil_binary()
        self.chain_id = chain_id
        self.block_time = block_time
        self.no_mining = no_mining
        self.prune_history = prune_history
        self.gas_limit = gas_limit
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.order = order
        self.load_state_path = Path(load_state) if load_state is not None else None
        self.genesis_timestamp = genesis_timestamp
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._tmpdir: Path | None = None
        self._log_lines: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._listening = threading.Event()
        self._reader: threading.Thread | None = None
        self._rpc_id = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Anvil":
        if self.running:
            return self
        attempts = 1 if self._requested_port is not None else 5
        last_error: Exception | None = None
        for _ in range(attempts):
            port = self._requested_port if self._requested_port is not None else free_port()
            try:
                self._spawn(port)
                return self
            except AnvilError as exc:
                last_error = exc
                in_use = "Address already in use" in str(exc)
                self._cleanup()
                if not in_use:
                    raise
        raise AnvilError(f"could not bind a free port after {attempts} attempts: {last_error}")

    def _command(self, port: int) -> list[str]:
        cmd = [
            str(self.binary),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
            "--order", self.order,
        ]
        if self.prune_history is not None:
            cmd += ["--prune-history", str(self.prune_history)]
        if self.block_time is not None:
            cmd += ["--block-time", repr(float(self.block_time))]
        if self.no_mining:
            cmd.append("--no-mining")
        if self.gas_limit is not None:
            cmd += ["--gas-limit", str(self.gas_limit)]
        if self.genesis_timestamp is not None:
            cmd += ["--timestamp", str(int(self.genesis_timestamp))]
        if self.load_state_path is not None:
            if not self.load_state_path.is_file():
                raise AnvilError(f"state file {self.load_state_path} does not exist")
            cmd += ["--load-state", str(self.load_state_path)]
        cmd += list(self.extra_args)
        return cmd

    def _spawn(self, port: int) -> None:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="alphapulse-anvil-"))
        self._log_lines.clear()
        self._listening.clear()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOUNDRY_", "ANVIL_", "ETH_RPC"))}
        env["HOME"] = str(self._tmpdir)
        env["NO_COLOR"] = "1"
        in_main_thread = threading.current_thread() is threading.main_thread()
        # PDEATHSIG fires when the *thread* that forked exits, so only use it from the main thread.
        preexec = _set_pdeathsig if (sys.platform.startswith("linux") and in_main_thread) else None
        self._proc = subprocess.Popen(
            self._command(port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self._tmpdir,
            preexec_fn=preexec,
        )
        self._port = port
        _live_nodes.add(self)
        # anvil logs every RPC call: read its output in a thread into a bounded tail (nothing
        # grows on disk) and note the banner that proves this process owns the port.
        self._reader = threading.Thread(target=self._read_output, args=(self._proc.stdout, port),
                                        name=f"anvil-{port}-log", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                self._reader.join(timeout=2.0)   # read its last words (e.g. "Address already in use")
                raise AnvilError(
                    f"anvil exited with code {self._proc.returncode} during start-up: {self.log_tail()}")
            try:
                # Another node may already listen on this port: only our own banner proves the
                # answer comes from this process.
                if not self._listening.is_set():
                    raise AnvilError("not listening yet")
                chain_id = int(self.rpc("eth_chainId", [], timeout=1.0), 16)
            except (OSError, AnvilError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise AnvilError(f"anvil did not answer eth_chainId within {self.startup_timeout}s")
                time.sleep(0.003)
                continue
            if chain_id != self.chain_id:
                self.stop()
                raise AnvilError(f"anvil answered chain id {chain_id}, expected {self.chain_id}")
            return

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the node (SIGTERM, then SIGKILL after ``timeout``) and delete its temp dir."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._proc is not None and self._proc.poll() is None:  # failed start: do not leak
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        _live_nodes.discard(self)
        if self._reader is not None:
            self._reader.join(timeout=2.0)   # ends at EOF once the process is gone
            self._reader = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def restart(self, *, load_state: Path | str | None = None) -> "Anvil":
        """Stop and start again on the same port (clients reconnect to the same URL).

        With ``load_state`` the new process starts from that dumped state (same blocks, hashes
        and balances); without it a fresh chain starts at block 0.
        """
        port = self._port
        self.stop()
        self.load_state_path = Path(load_state) if load_state is not None else None
        saved = self._requested_port
        self._requested_port = port
        try:
            deadline = time.monotonic() + 5.0
            while True:
                try:
                    return self.start()
                except AnvilError as exc:  # the old socket may linger for a moment
                    if "Address already in use" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            self._requested_port = saved

    def kill(self) -> None:
        """SIGKILL the node without cleanup of its chain (a crash, for resilience tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    # ------------------------------------------------------------------ properties
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise AnvilError("anvil has not been started")
        return self._port

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def home(self) -> Path | None:
        """The node's private temporary HOME (deleted by ``stop()``)."""
        return self._tmpdir

    def log_tail(self, n_lines: int = 40) -> str:
        """The last lines anvil printed (start-up errors, recent RPC methods)."""
        lines = list(self._log_lines)
        return "\n".join(lines[-n_lines:]).strip()

    def _read_output(self, stream, port: int) -> None:
        banner = f"Listening on 127.0.0.1:{port}"
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                self._log_lines.append(line)
                if not self._listening.is_set() and banner in line:
                    self._listening.set()
        except (OSError, ValueError):
            pass
        finally:
            stream.close()

    # ------------------------------------------------------------------ JSON-RPC
    def rpc(self, method: str, params: list[Any] | None = None, *, timeout: float = 30.0) -> Any:
        """One JSON-RPC call over HTTP (no web3 needed); raises AnvilError on an RPC error."""
        with self._lock:
            self._rpc_id += 1
            rid = self._rpc_id
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or []}).encode()
        req = urllib.request.Request(self.http_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
        if "error" in reply:
            raise AnvilError(f"{method} failed: {reply['error']}")
        return reply["result"]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now (pending transactions go into the first)."""
        if blocks == 1:
            self.rpc("evm_mine")
        else:
            # anvil_mine gets slower as the chain grows (1,500 blocks: 5 s at block 0, 18 s at 3,000)
            self.rpc("anvil_mine", [hex(blocks)], timeout=60.0 + 0.05 * blocks)

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", [bool(enabled)])

    def set_block_timestamp_interval(self, seconds: int) -> None:
        """Every following block's timestamp = previous + ``seconds`` (not wall clock): with
        ``genesis_timestamp`` this makes block timestamps, and so block hashes, reproducible."""
        self.rpc("anvil_setBlockTimestampInterval", [int(seconds)])

    def snapshot(self) -> str:
        """``evm_snapshot``: an id for ``revert`` (each id can be reverted to once)."""
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc("evm_revert", [snapshot_id]):
            raise AnvilError(f"evm_revert({snapshot_id}) refused")

    def dump_state(self, path: Path | str) -> Path:
        """Write the chain's full state (accounts, blocks, transactions) as JSON to ``path``.

        The file is accepted by ``Anvil(load_state=path)`` and ``restart(load_state=path)``.
        """
        blob = self.rpc("anvil_dumpState", timeout=120.0)
        raw = bytes.fromhex(blob[2:] if blob.startswith("0x") else blob)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, path)
        return path

    def load_state(self, path: Path | str) -> None:
        """Merge a dumped state into this running node (``anvil_loadState``): accounts, code and
        storage; block history comes only with a restart from the file."""
        raw = gzip.compress(Path(path).read_bytes())
        if not self.rpc("anvil_loadState", ["0x" + raw.hex()], timeout=120.0):
            raise AnvilError(f"anvil_loadState({path}) refused")

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.http_url}" if self.running else "stopped"
        return f"Anvil(chain_id={self.chain_id}, {state})"
