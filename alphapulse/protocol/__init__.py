"""Protocol V2: the one declaration of the wire layouts and the pure-Python codec."""
from alphapulse.protocol.layout import (  # noqa: F401
    FLAG_REPLAYED, HEADER_SIZE, LAYOUTS, MAGIC, MAX_FRAME, MAX_PAYLOAD, VERSION,
    Domain, PoolKind, Reject, Source, TlvLayout, Venue,
)
from alphapulse.protocol.codec import (  # noqa: F401
    ArbitrageSignal, Frame, FrameError, GasPrice, Header, Heartbeat, PoolBurn, PoolMint,
    PoolState, PoolSwap, PoolSync, PoolTick, Quote, RawTlv, Trade, address_bytes,
    build_frame, decode_value, encode_tlv, encode_value, frame_checksum, iter_frames,
    iter_tlvs, parse_frame, parse_header, to_checksum_address,
)
