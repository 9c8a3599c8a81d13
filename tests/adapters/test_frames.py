"""The adapter's fast frame builder produces exactly the codec's bytes, for every layout."""
import random

import pytest

from alphapulse.adapters.evm import frames as F
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L


def _random_value(kind, rng):
    if kind in L.BYTES_KINDS:
        return bytes(rng.getrandbits(8) for _ in range(L.KINDS[kind][0]))
    size = L.KINDS[kind][0]
    bits = 8 * size
    if kind in L.SIGNED_KINDS:
        return rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))
    return rng.randrange(0, 1 << bits)


def _random_record(lay, rng):
    kw = {}
    for f in lay.data_fields:
        vals = [_random_value(f.kind, rng) for _ in range(f.count)]
        kw[f.name] = tuple(vals) if f.count > 1 else vals[0]
    return codec.RECORDS[lay.type_id](**kw)


@pytest.mark.parametrize("type_id", sorted(L.LAYOUTS))
def test_same_bytes_as_codec_for_every_layout(type_id):
    rng = random.Random(type_id)
    lay = L.LAYOUTS[type_id]
    for _ in range(200):
        recs = [_random_record(lay, rng) for _ in range(rng.randint(1, 3))]
        ck = rng.random() < 0.5
        a = F.build_frame(1, 4, 7, recs, timestamp_ns=123, checksum=ck)
        b = codec.build_frame(1, 4, 7, recs, timestamp_ns=123, checksum=ck)
        assert a == b
        assert codec.parse_frame(a).tlvs == tuple(recs)


def test_values_that_do_not_fit_raise_encode_error():
    ok = codec.PoolSync(reserve0=1, reserve1=2, token0_decimals=18)
    F.build_frame(1, 4, 1, [ok])
    for bad in (codec.PoolSync(reserve0=1 << 128), codec.PoolSync(token0_decimals=256),
                codec.PoolSync(log_index=-1), codec.PoolSync(pool=b"\x01" * 19)):
        with pytest.raises(F.EncodeError):
            F.build_frame(1, 4, 1, [bad])
