"""One session's document logic without a server: what a push streams and patches."""
from __future__ import annotations

from bokeh.document import Document

from alphapulse.dashboard.aggregate import NS_PER_S, Aggregator, TokenBook, pair_id
from alphapulse.dashboard.app import BEST_BG, PRICE_LINES, ROW_BG, Hub
from alphapulse.protocol import codec
from alphapulse.protocol.layout import Domain, Source
from tests.dashboard.conftest import POOLS, TOKENS, WETH, USDC, signal_frame, sync_frame

T0 = 1_800_000_000 * NS_PER_S


def session(max_rows=4):
    now = {"wall": T0}
    agg = Aggregator(TokenBook(TOKENS), max_rows=max_rows)
    hub = Hub(agg, max_updates_per_s=50, clock_ns=lambda: 0, wall_ns=lambda: now["wall"])
    doc = Document()
    hub.make_document(doc)
    (sv,) = hub.sessions
    return agg, sv, now, doc


def add_signal(agg, sid, net_e8, ts=T0):
    agg.ingest("signal", signal_frame(sid, signal_id=sid, amount_in=10 ** 18,
                                      amount_out=10 ** 18 + sid, net_e8=net_e8, gross_e8=net_e8,
                                      gas_e8=0, gas_wei=1, block=sid, spread_bps=1, ts_ns=ts), ts)


def test_rows_stream_in_order_best_highlighted_and_moved():
    agg, sv, now, doc = session()
    assert sv._push(1)                                    # first push: header, health, ...
    assert not sv._push(2)                                # nothing new: no push
    for sid, net in ((1, 500), (2, 900), (3, 100)):
        add_signal(agg, sid, net)
    assert sv._push(3)
    d = sv.table_src.data
    assert d["signal_id"] == ["1", "2", "3"]              # oldest first; the grid sorts newest first
    assert d["bg"] == [ROW_BG, BEST_BG, ROW_BG] and d["fs"] == ["normal", "bold", "normal"]
    assert sv.push_clock.tags == [sv.push_seq, 3]
    add_signal(agg, 4, 1000)                              # a new best: old row un-highlighted
    assert sv._push(4)
    assert sv.table_src.data["bg"] == [ROW_BG, ROW_BG, ROW_BG, BEST_BG]
    # rollover at max_rows (4): the table and the session's index stay aligned
    add_signal(agg, 5, 10)
    add_signal(agg, 6, 20)
    sv._push(5)
    assert sv.table_src.data["signal_id"] == ["3", "4", "5", "6"]
    assert sv.table_seqs == [3, 4, 5, 6]
    assert sv.table_src.data["bg"] == [ROW_BG, BEST_BG, ROW_BG, ROW_BG]
    # an hour later signal 4 leaves the window; with no newer priced one, nothing is best
    now["wall"] = T0 + 3601 * NS_PER_S
    assert sv._push(6)
    assert BEST_BG not in sv.table_src.data["bg"]
    # six signals, one cycle (same pools and direction, no market data to close it), each in
    # its own block: capturable 500 + 900 + 100 + 1000 + 10 for blocks 1-5, block 6 (20) provisional
    header = sv.live["header"]
    assert "signals<b id='ap-signals'>6</b>" in header and "opportunities<b id='ap-opps'>1</b>" in header
    assert "capturable profit<b id='ap-total'>$0.00</b>" in header        # 2,530 e8 = $0.0000253
    assert sv.agg.book.capturable_usd_e8 + sv.agg.book.pending_capturable_usd_e8() == 2530
    assert "<b id='ap-gas'>–</b>" in header
    gas = codec.GasPrice(base_fee_wei=31_000_000_000, priority_fee_wei=2_500_000_000,
                         block_number=7, chain_id=137)
    agg.ingest("market", codec.build_frame(Domain.MARKET_DATA, Source.POLYGON_COLLECTOR, 1, [gas]),
               T0)
    assert sv._push(7)
    assert "<b id='ap-gas'>33.5 gwei</b>" in sv.live["header"]


def test_a_session_opened_late_gets_the_newest_rows_only():
    agg, sv, now, doc = session(max_rows=3)
    for sid in range(1, 11):
        add_signal(agg, sid, sid)
    sv._push(1)
    assert sv.table_src.data["signal_id"] == ["8", "9", "10"]


def test_prices_default_pair_slots_and_switching():
    agg, sv, now, doc = session()
    other = bytes.fromhex("00000000000000000000000000000000000000bb")
    for i, pool in enumerate(POOLS[:3]):
        agg.ingest("md", sync_frame(i + 1, pool, 400 + i, (2_000_000 + i) * 10 ** 6,
                                    1000 * 10 ** 18, 1, T0), T0)
    agg.prices.update(b"\x77" * 20, 400, other, USDC, agg.prices.pools[POOLS[0]].last_exact, T0, 1)
    sv._push(1)
    weth_usdc = (USDC, WETH)
    assert sv.pair == weth_usdc and sv.pair_select.value == pair_id(weth_usdc)
    assert [o[1] for o in sv.pair_select.options][0] == "WETH/USDC (3 pools)"
    shown = [(it.label.value, it.visible) for _, it, _ in sv.price_slots[:4]]
    assert shown == [("QuickSwap", True), ("SushiSwap", True), ("venue 402", True), ("", False)]
    assert sv.price_slots[0][0].data["price"] == [2000.0]
    assert "3 pools" in sv.pair_select.options[0][1]
    # the user picks the other pair: lines are reset and refilled from that pair's history
    other_id = [k for k, _ in sv.pair_select.options if k != pair_id(weth_usdc)][0]
    sv.pair_select.value = other_id
    sv._push(2)
    visible = [it.label.value for _, it, r in sv.price_slots if it.visible]
    assert visible == ["QuickSwap"] and len(sv.price_slots) == PRICE_LINES
    assert sv.price_slots[1][0].data["price"] == []


def test_capturable_profit_per_block_is_charted_at_most_once_a_second():
    agg, sv, now, doc = session()
    for sid, net in ((1, 500), (2, 900), (3, 100)):      # blocks 1, 2, 3: block 3 still open
        add_signal(agg, sid, net)
    s = 1_000_000_000
    assert sv._push(5 * s)
    assert sv.cap_src.data["block"] == [1, 2] and sv.cap_src.data["usd"] == [500 / 1e8, 900 / 1e8]
    add_signal(agg, 4, 50)                                 # ends block 3
    sv._push(5 * s + s // 2)
    assert sv.cap_src.data["block"] == [1, 2]              # half a second later: not yet
    sv._push(6 * s)
    assert sv.cap_src.data["block"] == [1, 2, 3] and "ap-total'>$0.00" in sv.live["header"]


def report_frame(seq, sid, status, out, *, trigger=T0, done=T0 + 3_500_000):
    rep = codec.ExecutionReport(signal_id=sid, checked_block=sid, signal_block=sid, trigger_ts_ns=trigger,
                                done_ts_ns=done, amount_in=10 ** 18, amount_out_signal=10 ** 18 + sid,
                                amount_out_checked=out, status=status, method=1, strategy_id=1)
    return codec.build_frame(Domain.EXECUTION, Source.EXECUTION_ENGINE, seq, [rep])


def test_execution_reports_fill_the_check_cells_of_rows_shown_and_the_latency_chart():
    from alphapulse.execution.component import COUNTERS
    from alphapulse.metrics import DEFAULT_COUNTERS, MetricsBlock
    agg, sv, now, doc = session(max_rows=3)
    for sid in (1, 2):
        add_signal(agg, sid, 100)
    sv._push(1)
    d = sv.table_src.data
    assert d["check"] == ["–", "–"] and d["tx"] == ["–", "–"]
    assert agg.ingest("execution", report_frame(1, 2, 1, 10 ** 18 + 2), T0)           # confirmed
    assert agg.ingest("execution", report_frame(2, 1, 2, 10 ** 18 + 7, done=T0 + 12_250_000), T0)  # changed
    assert sv._push(2)
    d = sv.table_src.data
    assert d["check"] == ["changed", "confirmed"]
    assert d["checked_out"] == ["1.000000000000000007 WETH", "1.000000000000000002 WETH"]
    assert d["check_ms"] == ["12.2 ms", "3.5 ms"]
    assert not sv._push(3)                                  # nothing new: no patch, no push
    # send mode: the transaction's state follows in the same row
    agg.ingest("execution", report_frame(3, 2, 5, 10 ** 18 + 2), T0)
    sv._push(4)
    assert sv.table_src.data["tx"] == ["–", "sent"]
    agg.ingest("execution", report_frame(4, 2, 6, 10 ** 18 + 2), T0)
    sv._push(5)
    assert sv.table_src.data["tx"] == ["–", "included"] and sv.table_src.data["check"][1] == "confirmed"
    # a report of a signal no longer shown is counted, never applied to another row
    for sid in (3, 4, 5):
        add_signal(agg, sid, 100)
    agg.ingest("execution", report_frame(5, 1, 4, 0), T0)
    sv._push(6)
    assert sv.table_src.data["signal_id"] == ["3", "4", "5"] and "reverted" not in sv.table_src.data["check"]
    assert agg.opportunities.reports_unmatched == 1
    assert agg.opportunities.reports == {"confirmed": 1, "changed": 1, "sent": 1, "included": 1, "reverted": 1}
    # a late session shows the rows with their check cells
    doc2 = Document()
    sv.hub.make_document(doc2)
    (sv2,) = sv.hub.sessions - {sv}
    agg.ingest("execution", report_frame(6, 4, 3, 10 ** 17), T0)
    sv2._push(1)
    assert sv2.table_src.data["check"] == ["–", "unprofitable", "–"]
    # the check latency histogram: the execution component's histogram from the metrics block
    m = MetricsBlock.create("alphapulse_test_chk_hist", ("strategy", "execution"), counters=DEFAULT_COUNTERS + COUNTERS)
    try:
        for ns in (800_000, 900_000, 1_500_000, 4_000_000):
            m.observe_latency_ns("execution", ns)
        m.counter("execution", "checks").add(4)
        m.counter("execution", "confirmed").add(3)
        m.counter("execution", "reverted").add(1)
        with agg.lock:
            agg.health.set_metrics(m.snapshot(), T0)
            agg.health.sample(T0)
    finally:
        m.close()
    assert not sv.chk_fig.visible
    for dt in range(3):                     # one slow part (capturable, health, charts) per push
        sv._push(10 * NS_PER_S + dt)
    assert sv.chk_fig.visible
    assert sv.chk_src.data["bucket"] == ["≤500µs", "≤1ms", "≤2ms", "≤5ms", "≤10ms"]
    assert sv.chk_src.data["count"] == [0, 2, 1, 1, 0]
    assert list(sv.chk_fig.x_range.factors) == sv.chk_src.data["bucket"]
    assert "confirmed <b>75.0 %</b> (3)" in sv.live["health"]


def test_hot_reload_of_the_rate_limit_reaches_open_sessions():
    import pytest
    agg, sv, now, doc = session()
    hub = sv.hub
    assert sv.pusher.limiter.max_per_s == 50
    hub.set_rate_limit(2.5)
    assert hub.max_updates_per_s == 2.5 and sv.pusher.limiter.max_per_s == 2.5
    with pytest.raises(ValueError):
        hub.set_rate_limit(0)                              # refused whole: nothing changed
    assert hub.max_updates_per_s == 2.5 and sv.pusher.limiter.max_per_s == 2.5


def test_slow_parts_go_one_per_push_each_at_most_once_a_second():
    """The capturable chart, the health panel and the health charts each update at most once a
    second, and never two of them in one push (together they made one long browser task)."""
    agg, sv, now, doc = session()
    s = 1_000_000_000
    assert sv._push(4 * s) and sv.health_version == sv.charts_version == 0   # the first push: all
    for sid, net in ((1, 500), (2, 900), (3, 100)):      # blocks 1, 2 closed: capturable points
        add_signal(agg, sid, net)
    agg.health.note_frames("signal", 3)
    agg.health.sample(5 * s)                             # a new health version
    done = []
    for i in range(4):                                   # pushes 100 ms apart
        before = (len(sv.cap_src.data["block"]), sv.health_version, sv.charts_version)
        sv._push(5 * s + i * s // 10)
        after = (len(sv.cap_src.data["block"]), sv.health_version, sv.charts_version)
        done.append([name for name, a, b in zip(("capturable", "health", "charts"), before, after) if a != b])
    assert done == [["capturable"], ["health"], ["charts"], []], done
    assert "ap-live-health" not in sv.live["health"] and "Rings" in sv.live["health"]
    agg.health.sample(5 * s + s // 2)                     # news for the health parts, half a second on
    sv._push(5 * s + 6 * s // 10)
    assert sv.health_version != agg.health.version       # not yet: the panel waits out its second
    sv._push(6 * s + s // 10)
    assert sv.health_version == agg.health.version and sv.charts_version != agg.health.version
    sv._push(6 * s + 2 * s // 10)
    assert sv.charts_version == agg.health.version


def test_streaming_charts_get_their_ranges_with_their_data():
    """The capturable and frames/s charts have fixed ranges set in the push that streams their
    data (an auto range made the page paint each chart twice per update)."""
    from bokeh.models import Range1d

    from alphapulse.dashboard.app import _headroom
    agg, sv, now, doc = session()
    s = 1_000_000_000
    for sid, net in ((1, 500_000_000), (2, 900_000_000), (3, 100)):     # blocks 1, 2 closed: $5, $9
        add_signal(agg, sid, net)
    agg.health.note_frames("signal", 3)
    agg.health.sample(5 * s)
    agg.health.note_frames("signal", 30)
    agg.health.sample(6 * s)
    sv._push(6 * s)                                                       # the first push: every part
    for fig in (sv.cap_fig, sv.trend_fig):
        assert isinstance(fig.x_range, Range1d) and isinstance(fig.y_range, Range1d)
    assert (sv.cap_fig.x_range.start, sv.cap_fig.x_range.end) == (0.5, 2.5)
    assert (sv.cap_fig.y_range.start, sv.cap_fig.y_range.end) == (0, 10.0)          # $9 + 10 %, stepped
    t = sv.trend_src.data["t"]
    assert t and (sv.trend_fig.x_range.start, sv.trend_fig.x_range.end) == (t[0], max(t[-1], t[0] + 1))
    top = max(max(sv.trend_src.data[k]) for k in sv.trend_keys)
    assert sv.trend_fig.y_range.start == 0 and top <= sv.trend_fig.y_range.end == _headroom(top)
    assert [_headroom(x) for x in (0, 0.5, 0.95, 9, 10, 44, 1e6)] == [1.0, 1.0, 2.0, 10.0, 20.0, 50.0, 2e6]
