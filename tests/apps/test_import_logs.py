"""The log importer without a node: each input form, the journal it writes, every skip reason,
and every bad argument (exit 2, one line naming the input)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from alphapulse.adapters.evm import abi
from alphapulse.apps import import_logs
from alphapulse.chain.anvil import free_port
from alphapulse.journal import JournalReader
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L

V2 = "0x" + "a2" * 20
V3 = "0x" + "a3" * 20
T0 = "0x" + "01" * 20
T1 = "0x" + "02" * 20
WHO = "0x" + "77" * 20
SQRT = 79228162514264337593543950336          # price 1


def word(v: int) -> str:
    return (v % (1 << 256)).to_bytes(32, "big").hex()


def topic(v) -> str:
    return "0x" + (word(int(v, 16)) if isinstance(v, str) else word(v))


def lg(address, spec, topics, words, block, index, bhash=None):
    return {"address": address, "topics": [spec.topic0_hex] + [topic(t) for t in topics],
            "data": "0x" + "".join(word(w) for w in words), "blockNumber": hex(block),
            "logIndex": hex(index), "transactionIndex": "0x0",
            "blockHash": bhash or "0x" + f"{block:064x}", "removed": False}


def good_logs():
    """Blocks 101 and 102: V2 swap + sync, V3 swap and mint."""
    return [
        lg(V2, abi.V2_SWAP, [WHO, WHO], [1000, 0, 0, 990], 101, 0),
        lg(V2, abi.V2_SYNC, [], [1_001_000, 999_010], 101, 1),
        lg(V3, abi.V3_SWAP, [WHO, WHO], [-500, 501, SQRT - 10, 10**9, -1], 102, 0),
        lg(V3, abi.V3_MINT, [WHO, -120, 120], [int(WHO, 16), 5000, 7, 7], 102, 1),
    ]


def snapshot(**over):
    doc = {"block": 100, "chain_id": 137, "tokens": {T0: 18, T1: 6}, "pools": [
        {"address": V2, "kind": "v2", "venue": 400, "token0": T0, "token1": T1, "fee_pips": 3000,
         "reserve0": "1000000", "reserve1": 1_000_000},
        {"address": V3, "kind": "v3", "venue": 405, "token0": T0, "token1": T1, "decimals0": 18,
         "decimals1": 6, "fee_pips": 500, "sqrt_price_x96": str(SQRT), "liquidity": "0x3b9aca00",
         "tick": 0, "tick_spacing": 10, "ticks": [[-600, "1000"], [600, -1000]], "tick_range": [-800, 800]},
    ]}
    doc.update(over)
    return doc


def write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def run(tmp_path, logs, *extra, snap=None, capsys=None):
    args = [write(tmp_path, "logs.json", logs) if not isinstance(logs, str) else logs,
            "--snapshot", write(tmp_path, "snap.json", snap or snapshot()),
            "--out", str(tmp_path / "out.apj"), "--report", str(tmp_path / "rep.json"), *extra]
    rc = import_logs.main(args)
    assert rc == 0
    return json.loads((tmp_path / "rep.json").read_text())


def journal(tmp_path, name="out.apj"):
    return [codec.parse_frame(f) for _, f in JournalReader(tmp_path / name).frames()]


def test_journal_holds_state_then_each_block_with_gas_and_block_end(tmp_path):
    rep = run(tmp_path, good_logs(), "--base-fee-wei", "30000000000", "--priority-fee-wei", "7")
    assert rep["skipped"] == {} and rep["blocks"] == 2 and rep["gas_prices"] == 2
    assert rep["events_written"] == {"v2_swap": 1, "v2_sync": 1, "v3_mint": 1, "v3_swap": 1}
    frames = journal(tmp_path)
    assert [f.header.sequence for f in frames] == list(range(1, len(frames) + 1))
    assert {f.header.source for f in frames} == {int(L.Source.IMPORTER)}
    ts = [f.header.timestamp_ns for f in frames]
    assert ts == sorted(set(ts))
    types = [[r.TYPE for r in f.tlvs] for f in frames]
    S, T, C, G, E = (L.POOL_STATE.type_id, L.POOL_TICK.type_id, L.TICK_COVERAGE.type_id,
                     L.GAS_PRICE.type_id, L.BLOCK_END.type_id)
    assert types == [[S], [S, C, T, T], [G], [L.POOL_SWAP.type_id], [L.POOL_SYNC.type_id], [E],
                     [G], [L.POOL_SWAP.type_id], [L.POOL_MINT.type_id], [E]]
    v2, v3 = frames[0].tlvs[0], frames[1].tlvs
    assert (v2.reserve0, v2.reserve1, v2.pool_kind, v2.venue, v2.token1_decimals) == (10**6, 10**6, 1, 400, 6)
    assert (v3[0].sqrt_price_x96, v3[0].liquidity, v3[0].tick_spacing, v3[0].fee_pips) == (SQRT, 10**9, 10, 500)
    assert [(t.tick, t.liquidity_net) for t in v3[2:4]] == [(-600, 1000), (600, -1000)]
    assert (v3[1].tick_lower, v3[1].tick_upper) == (-800, 800)
    gas = frames[2].tlvs[0]
    assert (gas.base_fee_wei, gas.priority_fee_wei, gas.block_number, gas.chain_id) == (30 * 10**9, 7, 101, 137)
    swap = frames[3].tlvs[0]
    assert (swap.amount_in, swap.amount_out, swap.token_in, swap.flags) == (
        1000, 990, bytes.fromhex(T0[2:]), L.EVENT_TOKEN0_IN)
    end = frames[5].tlvs[0]
    assert (end.block_number, end.event_count, end.chain_id, end.block_hash) == (
        101, 2, 137, (101).to_bytes(32, "big"))
    v3swap = frames[7].tlvs[0]
    assert (v3swap.amount_in, v3swap.amount_out, v3swap.tick_after) == (501, 500, -1)


def test_without_a_base_fee_no_gas_price_is_invented(tmp_path):
    rep = run(tmp_path, good_logs())
    assert rep["gas_prices"] == 0
    assert all(f.tlvs[0].TYPE != L.GAS_PRICE.type_id for f in journal(tmp_path))


def to_csv(logs, topics_style="json", base_fee=None):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["block_number", "transaction_index", "log_index", "address", "topics", "data", "block_hash"]
               + (["base_fee_per_gas"] if base_fee else []))
    for x in logs:
        tp = json.dumps(x["topics"]) if topics_style == "json" else \
            "[" + ", ".join(f"'{t}'" for t in x["topics"]) + "]"
        w.writerow([int(x["blockNumber"], 16), 0, int(x["logIndex"], 16), x["address"], tp, x["data"],
                    x["blockHash"]] + ([base_fee] if base_fee else []))
    return buf.getvalue()


@pytest.mark.parametrize("form", ["json_lines", "csv_json_topics", "csv_quoted_topics"])
def test_every_input_form_writes_the_same_journal(tmp_path, form):
    run(tmp_path, good_logs(), "--base-fee-wei", "5")
    reference = (tmp_path / "out.apj").read_bytes()
    if form == "json_lines":
        path = write(tmp_path, "logs.jsonl", "\n".join(json.dumps(x) for x in good_logs()))
    else:
        path = write(tmp_path, "logs.csv", to_csv(good_logs(), "json" if form == "csv_json_topics" else "quoted",
                                                  base_fee=5))
    rep = run(tmp_path, path, *([] if form.startswith("csv") else ["--base-fee-wei", "5"]))
    assert rep["skipped"] == {}
    assert (tmp_path / "out.apj").read_bytes() == reference


def test_undecodable_and_unusable_logs_are_counted_by_reason(tmp_path):
    logs = good_logs()
    unknown_topic = dict(logs[1], topics=["0x" + "ee" * 32], logIndex="0x10")
    short_data = dict(logs[1], data="0x" + word(1), logIndex="0x11")
    pending = dict(logs[1], blockNumber=None, logIndex="0x12")
    removed = dict(logs[1], removed=True, logIndex="0x13")
    no_direction = lg(V2, abi.V2_SWAP, [WHO, WHO], [0, 0, 0, 0], 101, 0x14)
    old = lg(V2, abi.V2_SYNC, [], [1, 1], 100, 5)
    stranger = lg("0x" + "99" * 20, abi.V2_SYNC, [], [1, 1], 101, 0x15)
    wrong_kind = lg(V2, abi.V3_SWAP, [WHO, WHO], [-5, 6, SQRT, 1, 0], 101, 0x16)
    fork_a = lg(V2, abi.V2_SYNC, [], [1, 1], 103, 0, bhash="0x" + "aa" * 32)
    fork_b = lg(V2, abi.V2_SYNC, [], [2, 2], 103, 1, bhash="0x" + "bb" * 32)
    rep = run(tmp_path, logs + [logs[0], unknown_topic, short_data, pending, removed, no_direction, old,
                                stranger, wrong_kind, fork_a, fork_b])
    assert rep["skipped"] == {"duplicate": 1, "unknown_topic": 1, "bad_data_length": 1, "pending_log": 1,
                              "removed": 1, "swap_without_direction": 1, "before_start_state": 1,
                              "unknown_pool": 1, "kind_mismatch": 1, "conflicting_block_hash": 2}
    assert sum(rep["events_written"].values()) == 4
    assert rep["logs_read"] == len(logs) + 11


def test_a_block_with_only_skipped_logs_still_ends_with_zero_events(tmp_path):
    logs = good_logs() + [lg("0x" + "99" * 20, abi.V2_SYNC, [], [1, 1], 105, 0)]
    run(tmp_path, logs)
    ends = [f.tlvs[0] for f in journal(tmp_path) if f.tlvs[0].TYPE == L.BLOCK_END.type_id]
    assert [(e.block_number, e.event_count) for e in ends] == [(101, 2), (102, 2), (105, 0)]


def test_decimals_and_venue_from_the_market_toml(tmp_path):
    toml = tmp_path / "market.toml"
    toml.write_text(f'[chain]\nchain_id = 80002\n[[chain.factories]]\naddress = "0x{"f0" * 20}"\nvenue = 401\n'
                    f'kind = "v2"\n[[chain.tokens]]\nsymbol = "A"\naddress = "{T0}"\ndecimals = 8\n'
                    f'[[chain.tokens]]\nsymbol = "B"\naddress = "{T1}"\ndecimals = 6\n')
    snap = snapshot(tokens={}, pools=[dict(snapshot()["pools"][0], factory="0x" + "f0" * 20)])
    del snap["pools"][0]["venue"]
    del snap["chain_id"]
    run(tmp_path, good_logs()[:2], "--market", str(toml), "--base-fee-wei", "1", snap=snap)
    frames = journal(tmp_path)
    st = frames[0].tlvs[0]
    assert (st.venue, st.token0_decimals, st.token1_decimals) == (401, 8, 6)
    assert frames[1].tlvs[0].chain_id == 80002


def bad(tmp_path, capsys, args):
    rc = import_logs.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    return err[0]


def test_bad_arguments_exit_2_with_one_line_naming_the_input(tmp_path, capsys):
    logs = write(tmp_path, "logs.json", good_logs())
    snap = write(tmp_path, "snap.json", snapshot())
    out = ["--out", str(tmp_path / "o.apj")]
    assert "LOGS: " in bad(tmp_path, capsys, [str(tmp_path / "nope.json"), "--snapshot", snap] + out)
    assert "--snapshot/--rpc" in bad(tmp_path, capsys, [logs] + out)
    assert "--snapshot: " in bad(tmp_path, capsys, [logs, "--snapshot", str(tmp_path / "nope")] + out)
    assert "--rpc: 'http://x'" in bad(tmp_path, capsys, [logs, "--rpc", "http://x", "--state-block", "1"] + out)
    assert "--state-block" in bad(tmp_path, capsys, [logs, "--rpc", "ws://127.0.0.1:1"] + out)
    assert "--csv-columns" in bad(tmp_path, capsys, [logs, "--snapshot", snap, "--csv-columns", "x=y"] + out)
    assert "--chain-id" in bad(tmp_path, capsys, [logs, "--snapshot", snap, "--chain-id", "0"] + out)
    no_chain = write(tmp_path, "s2.json", {k: v for k, v in snapshot().items() if k != "chain_id"})
    assert "--chain-id: unknown" in bad(tmp_path, capsys, [logs, "--snapshot", no_chain] + out)
    not_json = write(tmp_path, "weird.json", "{\"result\": 5}")
    assert "LOGS: " in bad(tmp_path, capsys, [not_json, "--snapshot", snap] + out)
    csv_path = write(tmp_path, "x.csv", "block,address\n1,2\n")
    assert "no column" in bad(tmp_path, capsys, [csv_path, "--snapshot", snap] + out)
    port = free_port()
    line = bad(tmp_path, capsys, [logs, "--rpc", f"ws://127.0.0.1:{port}", "--snapshot", snap] + out)
    assert line.startswith(f"import_logs: error: --rpc: ws://127.0.0.1:{port}: cannot connect")
    key = "PLANTEDimportKEY9"
    line = bad(tmp_path, capsys, [logs, "--rpc", f"ws://u:{key}@127.0.0.1:{port}/v3/{key}", "--snapshot", snap] + out)
    assert line.startswith(f"import_logs: error: --rpc: ws://***@127.0.0.1:{port}/***: cannot connect"), line
    assert key not in line
    line = bad(tmp_path, capsys, [logs, "--rpc", f"http://u:{key}@x/{key}", "--state-block", "1"] + out)
    assert "--rpc: 'http://***@x/***'" in line and key not in line, line


@pytest.mark.parametrize("pool_edit, where", [
    ({"kind": "v4"}, "pools[1].kind"),
    ({"tick": "abc"}, "pools[1].tick"),
    ({"ticks": [[-605, 1]]}, "pools[1].ticks[0]"),
    ({"ticks": [[-900, 1]]}, "pools[1].ticks[0]"),
    ({"liquidity": -1}, "pools[1].liquidity"),
    ({"ticks": [[t * 10, 1] for t in range(2000)],
      "tick_range": [0, 20000]}, "pools[1].ticks: 2000 ticks"),
    ({"token0": "0x12"}, "pools[1].token0"),
    ({"venue": None, "factory": "0x" + "f1" * 20}, "pools[1].factory"),
    ({"decimals0": None, "token0": "0x" + "05" * 20}, "pools[1].decimals0"),
])
def test_bad_snapshots_name_the_pool_and_field(tmp_path, capsys, pool_edit, where):
    doc = snapshot()
    p = doc["pools"][1]
    for k, v in pool_edit.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    line = bad(tmp_path, capsys, [write(tmp_path, "logs.json", good_logs()), "--snapshot",
                                  write(tmp_path, "snap.json", doc), "--out", str(tmp_path / "o.apj")])
    assert f"--snapshot: {tmp_path / 'snap.json'}: {where}" in line, line
