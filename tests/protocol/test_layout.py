"""The one layout declaration equals PROTOCOL.md's tables, byte for byte."""
import re
import struct
from pathlib import Path

import pytest

from alphapulse.protocol import layout as L

SPEC = Path(__file__).resolve().parents[3] / "shared" / "PROTOCOL.md"

EXPECTED_SIZES = {"Trade": 40, "Quote": 56, "PoolSwap": 172, "PoolMint": 164, "PoolBurn": 164,
                  "PoolTick": 52, "PoolState": 172, "PoolSync": 120, "GasPrice": 40,
                  "ArbitrageSignal": 248, "Heartbeat": 16, "TickCoverage": 36, "PoolFee": 48,
                  "BlockEnd": 56, "ExecutionReport": 152, "PoolRefresh": 32}


def test_sizes_match_spec_numbers():
    assert {lay.name: lay.size for lay in L.LAYOUTS.values()} == EXPECTED_SIZES


def test_dtype_itemsize_equals_wire_size():
    for lay in L.LAYOUTS.values():
        assert lay.dtype().itemsize == lay.size, lay.name


def test_header_struct_is_32_bytes():
    assert struct.calcsize(L.HEADER_STRUCT) == L.HEADER_SIZE == 32


def test_centralised_types_match_their_struct_formats():
    assert struct.calcsize("<QqqQHBBB3x") == L.TRADE.size
    assert struct.calcsize("<QqqqqQHBB4x") == L.QUOTE.size


def _spec_tables():
    """{type_id: (name, declared size, [(offset, field), ...])} parsed from PROTOCOL.md."""
    text = SPEC.read_text()
    tables = {}
    for m in re.finditer(r"^### (\d+) (\w+)(?: and (\d+) (\w+))? \((\d+) bytes\)[^\n]*\n(.*?)(?=^#)",
                         text, re.S | re.M):
        rows = re.findall(r"^\| (\d+) \| (\w+) \|", m.group(6), re.M)
        ids = [(int(m.group(1)), m.group(2))]
        if m.group(3):
            ids.append((int(m.group(3)), m.group(4)))
        for tid, name in ids:
            tables[tid] = (name, int(m.group(5)), [(int(o), f) for o, f in rows])
    return tables


@pytest.mark.skipif(not SPEC.exists(), reason="shared/PROTOCOL.md not beside the repo")
def test_offsets_match_protocol_md_tables():
    tables = _spec_tables()
    pool_types = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 32, 40, 101}
    assert pool_types <= set(tables)
    for tid in pool_types:
        name, size, rows = tables[tid]
        lay = L.LAYOUTS[tid]
        assert lay.name == name
        assert lay.size == size
        declared = [(f.offset, f.name) for f in lay.fields if not f.is_pad]
        spec_rows = [(o, f) for o, f in rows if f != "pad"]
        assert declared == spec_rows, name
    # Heartbeat size from its heading
    assert tables.get(100, ("Heartbeat", 16, []))[1] == L.HEARTBEAT.size


def test_type_ranges_route_to_domains():
    assert L.domain_of_type(11) == L.Domain.MARKET_DATA
    assert L.domain_of_type(32) == L.Domain.SIGNAL
    assert L.domain_of_type(65) == L.Domain.SIGNAL
    assert L.domain_of_type(45) == L.Domain.EXECUTION
    assert L.domain_of_type(100) == L.Domain.SYSTEM
    assert L.domain_of_type(200) == 0
