"""With per-frame evaluation (the default) the signals do not depend on how frames are batched:
a replay gives the signals of the live run, whatever its ring polls happened to group."""
import numpy as np

from alphapulse.apps.config import load_config
from alphapulse.apps.pipeline import BUNDLED_MARKET, BUNDLED_RECORDING
from alphapulse.journal import FILE_HEADER_SIZE
from alphapulse.protocol import codec
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
    assert eng.counters()["out_full"] == 0      # every signal of every batch fitted the output buffer
    return sigs


def test_signals_do_not_depend_on_batching():
    frames = _frames()
    one = _signals(frames, 1)
    assert len(one) > 10
    assert _signals(frames, 7) == one
    assert _signals(frames, 64) == one


def test_batch_mode_evaluates_once_per_batch():
    frames = _frames()
    per_frame = _signals(frames, 1, evaluate="batch")
    batched = _signals(frames, 64, evaluate="batch")
    assert len(batched) < len(per_frame)    # one search per batch: intermediate states are skipped
