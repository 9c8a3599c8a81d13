"""Fixtures of the dashboard tests: real rings, a real dashboard, a real headless Chromium."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from alphapulse.protocol import codec
from alphapulse.protocol.layout import Domain, Source
from perf.bench_browser import CHROME_FLAGS      # one set of headless Chromium flags

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ALPHAPULSE_ARTIFACTS", REPO / "artifacts"))

WETH = bytes.fromhex("7ceb23fd6bc0add59e62ac25578270cff1b9f619")
USDC = bytes.fromhex("2791bca1f2de4661ed88a30c99a7a9449aa84174")
WBTC = bytes.fromhex("1bfd67037b42cf73acf2047067bd4f2c47d9bfd6")
TOKENS = (("0x" + WETH.hex(), "WETH", 18), ("0x" + USDC.hex(), "USDC", 6),
          ("0x" + WBTC.hex(), "WBTC", 8))
POOLS = [bytes([0x10 + i]) * 20 for i in range(4)]


def signal_frame(seq: int, *, signal_id: int, amount_in: int, amount_out: int, net_e8: int,
                 gross_e8: int, gas_e8: int, gas_wei: int, block: int, spread_bps: int,
                 ts_ns: int, tokens=(WETH, USDC, bytes(20)), venues=(400, 401, 0), hops=2,
                 flags=0) -> bytes:
    sig = codec.ArbitrageSignal(
        amount_in=amount_in, amount_out=amount_out, gas_cost_wei=gas_wei,
        net_profit_usd_e8=net_e8, gross_profit_usd_e8=gross_e8, gas_cost_usd_e8=gas_e8,
        block_number=block, trigger_ts_ns=ts_ns, signal_id=signal_id, chain_id=137,
        strategy_id=1, hops=hops, flags=flags, venues=venues, fees_pips=(3000, 3000, 0),
        spread_bps=spread_bps, pools=(POOLS[0], POOLS[1], bytes(20)), tokens=tokens)
    return codec.build_frame(Domain.SIGNAL, Source.ARBITRAGE_STRATEGY, seq, [sig],
                             timestamp_ns=ts_ns)


def sync_frame(seq: int, pool: bytes, venue: int, reserve_usdc: int, reserve_weth: int,
               block: int, ts_ns: int) -> bytes:
    rec = codec.PoolSync(reserve0=reserve_usdc, reserve1=reserve_weth, block_number=block,
                         block_ts_ns=ts_ns, log_index=seq % 50, venue=venue, token0_decimals=6,
                         token1_decimals=18, flags=0, pool=pool, token0=USDC, token1=WETH)
    return codec.build_frame(Domain.MARKET_DATA, Source.POLYGON_COLLECTOR, seq, [rec],
                             timestamp_ns=ts_ns)


@pytest.fixture
def rings():
    """A lossless signal ring and an overwrite market ring, with their producers."""
    from alphapulse.ring import Ring
    tag = uuid.uuid4().hex[:8]
    sig = Ring.create(f"test_dash_{tag}_signal", 1 << 20, "lossless")
    md = Ring.create(f"test_dash_{tag}_market", 1 << 22, "overwrite")
    try:
        yield sig, md, sig.producer(), md.producer()
    finally:
        sig.close()
        md.close()
    assert not os.path.exists(f"/dev/shm/{sig.segment}")


@pytest.fixture
def chrome():
    """Headless system Chromium through Selenium (Debian's chromium + chromium-driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("chromium and chromedriver are required (Debian packages chromium, "
                    "chromium-driver; scripts/install.sh --test installs them)")
    profile = tempfile.mkdtemp(prefix="alphapulse-chrome-")
    opts = Options()
    opts.binary_location = binary
    for f in CHROME_FLAGS + (f"--user-data-dir={profile}",):
        opts.add_argument(f)
    d = webdriver.Chrome(options=opts, service=Service(driver))
    try:
        yield d
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


#: Rows of the signal table as rendered (inside Bokeh's shadow DOM), in display order:
#: [{cells: [cell text, ...], bg: the row's background}, ...].
TABLE_ROWS_JS = """
const found = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.classList && el.classList.contains('ap-row') && !el.hidden) found.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
return found.map((r) => ({
  cells: [...r.querySelectorAll('.ap-cell')].map((c) => c.textContent),
  bg: getComputedStyle(r).backgroundColor,
  // the row's width as shown: clipped by its scrolling container (0 when that collapsed)
  width: Math.min(r.getBoundingClientRect().width,
                  (r.closest('.ap-scroll') || r).getBoundingClientRect().width),
}));
"""

#: Text of the whole page including shadow roots.
PAGE_TEXT_JS = """
const parts = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) walk(el.shadowRoot);
    if (el.children.length == 0 && el.textContent) parts.push(el.textContent);
  }
})(document);
return parts.join(' | ');
"""

#: {id: text} of the header's figures (elements with an ap-* id), inside shadow roots.
KPI_JS = """
const out = {};
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.id && el.id.startsWith('ap-')) out[el.id] = el.textContent;
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
return out;
"""

#: Starts a 5 ms in-page check that stores ``Date.now()`` in ``window.__apSeen`` once the
#: table shows exactly the rows whose cells include ``arguments[0][i]``, in that order.
WATCH_ROWS_JS = """
const keys = arguments[0];
window.__apSeen = null;
const rowsNow = () => {
  const found = [];
  (function walk(root) {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ap-row') && !el.hidden) found.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  })(document);
  return found.map((r) => [...r.querySelectorAll('.ap-cell')].map((c) => c.textContent));
};
const timer = setInterval(() => {
  const rows = rowsNow();
  if (rows.length == keys.length && rows.every((cells, i) => cells.includes(keys[i]))) {
    window.__apSeen = Date.now();
    clearInterval(timer);
  }
}, 5);
"""
