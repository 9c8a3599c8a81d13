"""The signals do not depend on how frames are batched, with block-end evaluation (the default:
a block's events may span ring polls) as with per-frame evaluation: a replay gives the signals
of the live run, whatever its ring polls happened to group."""
import numpy as np
import pytest

from alphapulse.apps.config import load_config
from alphapulse.apps.pipeline import BUNDLED_MARKET, BUNDLED_RECORDING
from alphapulse.journal import FILE_HEADER_SIZE
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine

N_FRAMES = 1500


def _frames():
    data = BUNDLED_RECORDING.read_bytes()[FILE_HEADER_SIZE:]
    out, off = [], 0
    while off < len(data) and len(out) < N_FRAMES:
        fr = codec.parse_frame(data, off)
        out.append(data[off:off + fr.size])
        off += fr.size
    return out


def _signals(frames, batch, **cfg_over):
    cfg = load_config(base=BUNDLED_MARKET, environ={}, overrides={"strategy": cfg_over} if cfg_over else None)
    eng = StrategyEngine(EngineConfig.from_app_config(cfg))
    sigs = []
    for i in range(0, len(frames), batch):
        buf = np.frombuffer(b"".join(frames[i:i + batch]), np.uint8).copy()
        sigs += [codec.parse_frame(f).tlvs for f in eng.process([buf])]
    sigs += [codec.parse_frame(f).tlvs for f in eng.end_input_frames()]
    assert eng.counters()["out_full"] == 0      # every signal of every batch fitted the output buffer
    return sigs


@pytest.mark.parametrize("evaluate", ["block", "frame"])
def test_signals_do_not_depend_on_batching(evaluate):
    frames = _frames()
    one = _signals(frames, 1, evaluate=evaluate)
    assert len(one) > 10
    assert _signals(frames, 7, evaluate=evaluate) == one
    assert _signals(frames, 64, evaluate=evaluate) == one


def test_block_mode_searches_less_and_never_prices_intra_block_states():
    frames = _frames()
    block = _signals(frames, 1)
    frame = _signals(frames, 1, evaluate="frame")
    assert len(block) < len(frame)
    assert not any(s[0].flags & L.SIGNAL_INTRA_BLOCK for s in block)
    assert any(s[0].flags & L.SIGNAL_INTRA_BLOCK for s in frame)
