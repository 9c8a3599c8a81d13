"""Log files -> JSON-RPC log objects: every accepted form, and every unreadable row counted."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from alphapulse.adapters.evm.decode import decode_log
from alphapulse.adapters.evm.logfiles import (BASE_FEE_KEY, CsvColumns, LogFileError, parse_topics,
                                              read_logs)
from alphapulse.adapters.evm import abi

POOL = "0x" + "ab" * 20
SYNC = {"address": POOL, "topics": [abi.V2_SYNC.topic0_hex], "blockNumber": "0x10", "logIndex": "0x2",
        "transactionIndex": "0x1", "blockHash": "0x" + "11" * 32,
        "data": "0x" + (5).to_bytes(32, "big").hex() + (7).to_bytes(32, "big").hex()}


def read(tmp_path, text, name="logs", fmt="auto", cols=CsvColumns()):
    p = tmp_path / name
    p.write_text(text)
    skipped = Counter()
    return read_logs([p], fmt, cols, skipped), skipped


def test_json_array_response_and_lines_give_the_same_logs(tmp_path):
    a, s1 = read(tmp_path, json.dumps([SYNC, SYNC]))
    b, s2 = read(tmp_path, json.dumps({"jsonrpc": "2.0", "id": 1, "result": [SYNC, SYNC]}))
    c, s3 = read(tmp_path, json.dumps(SYNC) + "\n\n" + json.dumps(SYNC) + "\n")
    assert a == b == c == [SYNC, SYNC] and not (s1 or s2 or s3)
    assert decode_log(a[0]).reserve1 == 7


def test_json_bad_lines_and_items_are_counted(tmp_path):
    logs, skipped = read(tmp_path, json.dumps(SYNC) + "\n{not json\n[1]\n" + json.dumps(SYNC) + "\n")
    assert len(logs) == 2 and skipped == {"bad_json_line": 1, "bad_log": 1}
    logs, skipped = read(tmp_path, json.dumps([SYNC, 3, "x"]))
    assert logs == [SYNC] and skipped == {"bad_log": 2}


def test_json_of_another_shape_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(LogFileError, match="logs: JSON of type int"):
        read(tmp_path, "{\"result\": 5}")
    with pytest.raises(LogFileError, match="neither a JSON array nor JSON lines"):
        read(tmp_path, "{oops\n{again\n")


CSV_HEAD = "block_number,transaction_index,log_index,address,topics,data,block_hash\n"


def csv_row(topics_cell: str, block="16", log_index="2") -> str:
    return f'{block},1,{log_index},{POOL},"{topics_cell}",{SYNC["data"]},{SYNC["blockHash"]}\n'


@pytest.mark.parametrize("cell", [
    '[""{t}""]',          # JSON list (CSV-escaped quotes)
    "['{t}']",            # bracketed, single-quoted (Python / pandas)
    "[{t}]",              # bracketed, unquoted
])
def test_csv_topic_lists_in_each_form(tmp_path, cell):
    logs, skipped = read(tmp_path, CSV_HEAD + csv_row(cell.format(t=abi.V2_SYNC.topic0_hex)))
    assert not skipped
    ev = decode_log(logs[0])
    assert (ev.block_number, ev.log_index, ev.reserve0, ev.block_hash) == (16, 2, 5, bytes.fromhex("11" * 32))


def test_csv_topic_columns_hex_numbers_and_renamed_columns(tmp_path):
    text = ("blk,idx,address,topic0,topic1,topic2,topic3,data,block_timestamp,base_fee\n"
            f"0x10,2,{POOL},{abi.V2_SYNC.topic0_hex},,,,{SYNC['data']},2026-01-01 00:00:10 UTC,30000000000\n")
    cols = CsvColumns.parse("block_number=blk, log_index=idx, base_fee=base_fee")
    logs, skipped = read(tmp_path, text, cols=cols)
    assert not skipped
    assert logs[0]["topics"] == [abi.V2_SYNC.topic0_hex] and logs[0][BASE_FEE_KEY] == 30_000_000_000
    ev = decode_log(logs[0])
    assert (ev.block_number, ev.block_ts) == (16, 1_767_225_610)


def test_csv_bad_rows_are_counted_and_the_rest_kept(tmp_path):
    t = abi.V2_SYNC.topic0_hex
    text = (CSV_HEAD + csv_row(f"[{t}]") + csv_row(f"[{t}]", block="sixteen") + csv_row("not a list")
            + csv_row(f"[{t}]", log_index="") + "1,2,3\n" + csv_row(f"[{t}]", log_index="3"))
    logs, skipped = read(tmp_path, text)
    assert [lg["logIndex"] for lg in logs] == [2, 3]
    assert skipped == {"bad_csv_row": 4}


def test_csv_without_a_needed_column_names_it(tmp_path):
    with pytest.raises(LogFileError, match="no column 'log_index'"):
        read(tmp_path, "block_number,address,topics,data\n1,2,3,4\n")


def test_topics_parser_rejects_what_is_not_a_list():
    assert parse_topics("[]") == [] and parse_topics(' ["0x1", "0x2"] ') == ["0x1", "0x2"]
    for bad in ("0x1", "[1, 2", '[1, "a"]'):
        with pytest.raises(ValueError):
            parse_topics(bad)


def test_column_spec_errors_name_the_item():
    with pytest.raises(ValueError, match="unknown field 'blocknum'"):
        CsvColumns.parse("blocknum=b")
    with pytest.raises(ValueError, match="is not FIELD=COLUMN"):
        CsvColumns.parse("log_index")
