"""The Bokeh document of one browser session, and the hub that wakes sessions up.

Data flow: the reader thread (:mod:`alphapulse.dashboard.feed`) updates the
shared :class:`~alphapulse.dashboard.aggregate.Aggregator` and calls
:meth:`Hub.notify_all`. Each session owns a
:class:`~alphapulse.dashboard.ratelimit.CoalescingPusher`: the first
notification schedules one push through ``Document.add_next_tick_callback``
(the one thread-safe entry into a Bokeh document), later ones are folded into
it. The push runs on the server's event loop, copies under the aggregator's
lock only what this session has not seen (cursors per part), then applies it
with ``ColumnDataSource.stream`` (with rollover) and ``patch``. Nothing waits
on the loop and nothing queues per session beyond one scheduled push.
"""
from __future__ import annotations

import bisect
import logging
import threading
import time
from typing import Any, Callable

from bokeh.core.properties import value
from bokeh.document import Document
from jinja2 import Template
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource, CustomJS, CustomJSTickFormatter, Div, HoverTool, InlineStyleSheet, Legend, LegendItem, NumeralTickFormatter,
    Select,
)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from alphapulse.dashboard.aggregate import (
    Aggregator, format_fraction, format_usd_e8, pair_id, parse_pair_id,
)
from alphapulse.dashboard.ratelimit import CoalescingPusher, RateLimiter
from alphapulse.metrics import histogram_quantile

log = logging.getLogger("alphapulse.dashboard")

ROW_BG, BEST_BG = "rgba(0,0,0,0)", "#6b5410"     # best of the hour: amber row, bold
LIVE_SLOTS = (("header", "ap-live-header"), ("health", "ap-live-health"), ("price_now", "ap-live-price"))
#: (field, title, width px, right-aligned) of the signal table, in display order
TABLE_COLUMNS = (
    ("seq", "#", 45, True), ("time", "time (UTC)", 95, False), ("path", "path", 230, False),
    ("venues", "venues", 250, False), ("amount_in", "input", 190, True),
    ("gross_token", "gross (start token)", 200, True), ("gross_usd", "gross $", 85, True),
    ("net_usd", "net $", 85, True), ("gas_usd", "gas $", 70, True), ("gas_wei", "gas (wei)", 140, True),
    ("spread", "spread", 70, True), ("block", "block", 80, True), ("ts_ms", "age", 60, True),
    ("amount_in_units", "input (units)", 190, True))
TABLE_FIELDS = ("seq", "time", "path", "venues", "amount_in", "amount_in_units", "gross_token",
                "gross_usd", "net_usd", "gas_usd", "gas_wei", "spread", "block", "ts_ms",
                "signal_id", "bg", "fs")
LATENCY_WINDOW_S = 10
TREND_POINTS = 600
PRICE_LINES = 6                 # pools drawn per pair (all are listed beside the plot)
SLOW_PANEL_NS = 1_000_000_000   # charts and panels that need no 10 Hz: at most once a second

# A dark trading-desk look. Divs and widgets render in shadow DOM, so each gets the sheet.
CSS = """
  :host { color: #d7dde5; }
  .ap-bar { display:flex; gap:26px; align-items:baseline; font-family: system-ui, sans-serif;
            padding: 8px 6px 6px 6px; border-bottom: 1px solid #2a313b; }
  .ap-title { font-size: 22px; font-weight: 700; color:#f0f3f7; letter-spacing: .5px; }
  .ap-kpi { font-size: 12px; color:#8b96a5; font-family: system-ui, sans-serif; }
  .ap-kpi b { font-size: 18px; color:#f5f7fa; margin-left:6px; font-variant-numeric: tabular-nums; }
  .ap-ok { color:#3fb950; font-weight:700; } .ap-bad { color:#f85149; font-weight:700; }
  .ap-h { font: 600 13px system-ui, sans-serif; color:#c9d1d9; margin: 6px 0 2px 0;
          text-transform: uppercase; letter-spacing: .6px; }
  table.ap { border-collapse: collapse; font: 12px system-ui, sans-serif; width: 100%; }
  table.ap th { text-align:left; color:#8b96a5; font-weight:600; border-bottom:1px solid #2f3742;
                padding: 2px 6px; }
  table.ap td { padding: 2px 6px; border-bottom: 1px solid #222932; color:#d7dde5;
                font-variant-numeric: tabular-nums; }
  table.ap td.n { text-align:right; }
"""
TABLE_CSS = """
  .ap-scroll { height: 330px; overflow: auto; background: #15191e; border: 1px solid #2a313b;
               contain: content; }
  table.ap-grid { border-collapse: collapse; table-layout: fixed; font: 12px system-ui, sans-serif;
                  contain: content; }
  table.ap-grid th { position: sticky; top: 0; background: #1f252d; color: #8b96a5; font-weight: 600;
                     text-align: left; padding: 3px 6px; border-bottom: 1px solid #2a313b; }
  table.ap-grid td { padding: 0 6px; height: 23px; color: #e3e8ef; border-bottom: 1px solid #242b34;
                     white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
                     font-variant-numeric: tabular-nums; }
  table.ap-grid td.n { text-align: right; }
  tr.ap-row:nth-child(odd) { background: #1b2027; }
"""
SELECT_CSS = """
  select, .bk-input { background-color: #1f252d !important; color: #e3e8ef !important;
                      border-color: #38404b !important; }
  label { color: #8b96a5; }
"""
PAGE_TEMPLATE = """{% extends base %}
{% block preamble %}<style>html, body { background: #15191e; margin: 0; }</style>{% endblock %}
"""

#: y-axis labels of the charts that update while signals flow, all as wide as the widest: a
#: label of another width resizes the axis, and BokehJS then lays out and repaints every plot
#: of the page (the longest main-thread stalls under load).
FIXED_WIDTH_TICK_JS = """
const a = Math.abs(tick)
const s = a >= 1e9 ? (tick / 1e9).toFixed(1) + 'G' : a >= 1e6 ? (tick / 1e6).toFixed(1) + 'M'
  : a >= 1e3 ? (tick / 1e3).toFixed(1) + 'k' : a >= 10 || a == 0 ? tick.toFixed(0) : tick.toFixed(2)
return s.padStart(7, '\u2007')
"""

#: The signal table is plain HTML that the page patches: a fixed set of row elements (at most
#: ``max_rows``, newest first) whose cells are rewritten only where their text changed, once
#: per animation frame after a push, and once a second for the ages. A data grid re-rendering
#: (and re-measuring) every row on each stream kept the main thread busy at high signal rates.
TABLE_JS = """
const state = window.__apTable = window.__apTable || {queued: false}
const age = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000))
  return s < 60 ? s + 's' : s < 3600 ? Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's'
    : Math.floor(s / 3600) + 'h ' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm'
}
state.render = () => {
  state.queued = false
  if (state.body == null || !state.body.isConnected) {     // looked up once, again if re-rendered
    const view = Bokeh.index.find_one(host)
    if (view == null) return
    const root = view.shadow_el ?? view.el.shadowRoot ?? view.el
    state.body = root.querySelector('#ap-rows')
  }
  const body = state.body
  if (body == null) return
  const d = src.data, n = d.seq.length, now = Date.now()
  while (body.rows.length < Math.min(n, max_rows)) {
    const tr = body.insertRow()
    tr.className = 'ap-row'
    for (const c of numeric) tr.insertCell().className = c ? 'ap-cell n' : 'ap-cell'
  }
  for (let i = 0; i < body.rows.length; i++) {
    const tr = body.rows[i], k = n - 1 - i
    if (k < 0) { tr.hidden = true; continue }
    tr.hidden = false
    if (tr.__bg !== d.bg[k]) { tr.style.backgroundColor = d.bg[k]; tr.__bg = d.bg[k] }
    if (tr.__fw !== d.fs[k]) { tr.style.fontWeight = d.fs[k]; tr.__fw = d.fs[k] }
    for (let j = 0; j < fields.length; j++) {
      const f = fields[j]
      const v = f == 'ts_ms' ? age(now - d.ts_ms[k]) : String(d[f][k])
      const td = tr.cells[j]
      if (td.__v !== v) { td.textContent = v; td.__v = v }
    }
  }
}
state.schedule = () => {
  if (!state.queued) { state.queued = true; requestAnimationFrame(state.render) }
}
if (!state.ticking) { state.ticking = true; setInterval(state.schedule, 1000) }
state.schedule()
"""

#: Text that changes with every push (headline figures, health and price panels) is written
#: into its element's innerHTML by the page itself: changing a Div's ``text`` makes BokehJS
#: re-render it and lay the whole document out again (tens of ms with a DataTable), which at
#: a few pushes per second kept the main thread busy for seconds. ``live`` (a data source no
#: renderer draws) carries the newest HTML per slot; an element that was re-rendered since
#: gets it again on the next change.
LIVE_JS = """
const d = live.data
const found = window.__apSlots = window.__apSlots || {}   // slot -> element (looked up once)
for (let i = 0; i < d.slot.length; i++) {
  let el = found[d.slot[i]]
  if (el == null || !el.isConnected) {
    const view = Bokeh.index.find_one(hosts[d.host[i]])
    if (view == null) continue
    const root = view.shadow_el ?? view.el.shadowRoot ?? view.el
    el = found[d.slot[i]] = root.querySelector('#' + d.slot[i])
  }
  if (el != null && el.__ap !== d.html[i]) {
    el.innerHTML = d.html[i]
    el.__ap = d.html[i]
  }
}
"""

def _waiting(gauges: dict) -> str:
    """' (N waiting)' when a component has pools out of trading until a fresh snapshot."""
    n = gauges.get("pools_waiting", 0)
    return f" <span class='ap-bad'>({n:,} waiting)</span>" if n else ""


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:,.1f}"


def _fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "–"
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def _bucket_label(b: int) -> str:
    return "≤" + _fmt_ns(b).replace(".0 ", " ").replace(" ", "")


class Hub:
    """All sessions of one server process around one aggregator."""

    def __init__(self, agg: Aggregator, *, max_updates_per_s: float = 100.0,
                 latency_component: str = "strategy", title: str = "AlphaPulse",
                 ring_labels: tuple[str, ...] = ("signal", "market"),
                 ack_timeout_s: float = 1.0,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        RateLimiter(max_updates_per_s)                  # validate early, clear error
        self.agg = agg
        self.max_updates_per_s = max_updates_per_s
        self.latency_component = latency_component
        self.ring_labels = ring_labels
        self.ack_timeout_s = ack_timeout_s
        self.title = title
        self.clock_ns = clock_ns
        self.wall_ns = wall_ns
        self._lock = threading.Lock()
        self.sessions: set[SessionView] = set()
        self.health_cache: dict[str, Any] = {}
        self.sessions_opened = 0

    def make_document(self, doc: Document) -> None:
        """The Bokeh application handler: one call per new browser session."""
        sv = SessionView(self, doc)
        with self._lock:
            self.sessions.add(sv)
            self.sessions_opened += 1
        doc.on_session_destroyed(lambda ctx: self._drop(sv))

    def _drop(self, sv: "SessionView") -> None:
        with self._lock:
            self.sessions.discard(sv)
        sv.closed = True

    def notify_all(self) -> None:
        """Called by the reader thread after it changed the aggregator."""
        with self._lock:
            sessions = list(self.sessions)
        for s in sessions:
            s.pusher.notify()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            ss = list(self.sessions)
        return {"sessions": len(ss), "sessions_opened": self.sessions_opened,
                "pushes": sum(s.pusher.pushes for s in ss),
                "coalesced": sum(s.pusher.coalesced for s in ss)}


class SessionView:
    """One browser session: its models, cursors and rate-limited pusher."""

    def __init__(self, hub: Hub, doc: Document) -> None:
        self.hub, self.doc, self.agg = hub, doc, hub.agg
        self.closed = False
        self.pusher = CoalescingPusher(RateLimiter(hub.max_updates_per_s), self._schedule,
                                       self._push, hub.clock_ns,
                                       ack_timeout_ns=int(hub.ack_timeout_s * 1e9))
        self.push_seq = 0
        # cursors: what this session already shows
        self.sig_cursor = 0
        self.table_seqs: list[int] = []
        self.best_seq = 0
        self.summary_key: tuple | None = None
        self.pairs_version = -1
        self.pair: tuple[bytes, bytes] | None = None
        self.pair_user = False
        self.pool_cursor: dict[bytes, int] = {}
        self.health_version = -1
        self.trend_last = -1.0
        self.capturable_cursor = 0
        self.slow_at = -SLOW_PANEL_NS         # when the slow panels were last pushed (pusher clock)
        self.live: dict[str, str] = {}        # slot -> newest HTML (see LIVE_JS)
        self._build()
        self.pusher.notify()

    # ------------------------------------------------------------ models
    def _build(self) -> None:
        max_rows = self.agg.opportunities.rows.maxlen
        css = InlineStyleSheet(css=CSS)       # Divs render in shadow DOM: style each one
        self.header = Div(text="<div id='ap-live-header'></div>", sizing_mode="stretch_width",
                          stylesheets=[css])
        self.table_src = ColumnDataSource({k: [] for k in TABLE_FIELDS}, name="opportunities")
        head = "".join(f"<th style='width:{w}px'>{t}</th>" for _, t, w, _ in TABLE_COLUMNS)
        width = sum(w for _, _, w, _ in TABLE_COLUMNS)
        self.table = Div(text=(f"<div class='ap-scroll'><table class='ap-grid' style='width:{width}px'><thead><tr>"
                               f"{head}</tr></thead><tbody id='ap-rows'></tbody></table></div>"),
                         sizing_mode="stretch_width", name="opportunities_table",
                         stylesheets=[InlineStyleSheet(css=TABLE_CSS)])
        table_js = CustomJS(args=dict(src=self.table_src, host=self.table, max_rows=max_rows,
                                      fields=[f for f, _, _, _ in TABLE_COLUMNS],
                                      numeric=[n for _, _, _, n in TABLE_COLUMNS]), code=TABLE_JS)
        self.doc.js_on_event("document_ready", table_js)
        self.max_rows = max_rows

        # prices
        self.pair_select = Select(title="Token pair", options=[], value="", width=260,
                                  stylesheets=[InlineStyleSheet(css=SELECT_CSS)])
        self.pair_select.on_change("value", self._on_pair)
        self.price_fig = figure(height=330, sizing_mode="stretch_width", x_axis_type="datetime",
                                title="Price per venue", toolbar_location="right",
                                tools="pan,xwheel_zoom,box_zoom,reset,save")
        # A fixed set of line slots made once per session: adding renderers to a live
        # document re-walks its whole model graph (tens of ms each), changing a
        # slot's data and label is a small patch.
        self.price_slots: list[tuple[ColumnDataSource, LegendItem, Any]] = []
        for i in range(PRICE_LINES):
            src = ColumnDataSource({"t": [], "price": []})
            r = self.price_fig.step(x="t", y="price", source=src, line_width=2, mode="after",
                                    color=Category10_10[i % 10], visible=False)
            self.price_slots.append((src, LegendItem(label="", renderers=[r], visible=False), r))
        self.price_fig.add_layout(Legend(items=[it for _, it, _ in self.price_slots],
                                         click_policy="hide", location="top_left"), "right")
        self.price_fig.add_tools(HoverTool(tooltips=[("price", "@price{0,0.[000000]}"),
                                                     ("time", "@t{%H:%M:%S.%3N}")],
                                           formatters={"@t": "datetime"}))
        self.pool_slot: dict[bytes, int] = {}
        self.price_fig.yaxis.formatter = NumeralTickFormatter(format="0,0.[000000]")
        self.price_now = Div(text="<div id='ap-live-price'></div>", sizing_mode="stretch_width",
                             stylesheets=[css])

        # health
        self.health_div = Div(text="<div id='ap-live-health'></div>", sizing_mode="stretch_width",
                              stylesheets=[css])
        self.cap_src = ColumnDataSource({"block": [], "usd": []})
        self.cap_fig = figure(height=160, sizing_mode="stretch_width", toolbar_location=None, tools="",
                              title="Capturable profit per block (USD)")
        self.cap_fig.vbar(x="block", top="usd", width=0.9, source=self.cap_src, color="#3fb950")
        self.cap_fig.y_range.start = 0
        self.cap_fig.yaxis.formatter = CustomJSTickFormatter(code=FIXED_WIDTH_TICK_JS)
        self.cap_fig.yaxis.major_label_text_font = "monospace"
        self.lat_src = ColumnDataSource({"bucket": [], "count": []})
        self.lat_fig = figure(height=200, sizing_mode="stretch_width", x_range=[], toolbar_location=None,
                              tools="",
                              title="Latency histogram")
        self.lat_fig.vbar(x="bucket", top="count", width=0.8, source=self.lat_src, color="#3b6ea5")
        self.lat_fig.xaxis.major_label_orientation = 0.9
        self.lat_fig.y_range.start = 0
        self.lat_fig.yaxis.formatter = CustomJSTickFormatter(code=FIXED_WIDTH_TICK_JS)
        self.lat_fig.yaxis.major_label_text_font = "monospace"
        self.trend_keys = [f"ring:{r}" for r in self.hub.ring_labels]
        self.trend_src = ColumnDataSource({"t": [], **{k: [] for k in self.trend_keys}})
        self.trend_fig = figure(height=200, sizing_mode="stretch_width", x_axis_type="datetime",
                                title="Frames/s per ring", toolbar_location=None, tools="")
        self.trend_fig.xaxis.ticker.desired_num_ticks = 3
        self.trend_fig.yaxis.formatter = CustomJSTickFormatter(code=FIXED_WIDTH_TICK_JS)
        self.trend_fig.yaxis.major_label_text_font = "monospace"
        items = []
        for i, k in enumerate(self.trend_keys):
            r = self.trend_fig.line(x="t", y=k, source=self.trend_src, line_width=2,
                                    color=Category10_10[(i + 1) % 10])
            items.append(LegendItem(label=k.split(":", 1)[1], renderers=[r]))
        self.trend_fig.add_layout(Legend(items=items, location="top_left"), "right")

        # flow control: every push ends by setting push_clock.tags = [n, ns]; the page
        # answers with push_ack.tags = [n] once it has applied it (see CoalescingPusher).
        # Both are data sources no renderer draws: a change of any property of a layout
        # model (a Div's tags included) makes BokehJS lay the whole page out again.
        self.push_clock = ColumnDataSource({}, name="push_clock")
        self.push_ack = ColumnDataSource({}, name="push_ack")
        self.push_clock.js_on_change("tags", CustomJS(args=dict(ack=self.push_ack), code=(
            "ack.tags = [cb_obj.tags[0]]; if (window.__apTable) window.__apTable.schedule()")))
        self.push_ack.on_change("tags", self._on_ack)
        self.live_src = ColumnDataSource({"slot": [], "host": [], "html": []}, name="live")
        hosts = {"header": self.header, "health": self.health_div, "price_now": self.price_now}
        live_js = CustomJS(args=dict(live=self.live_src, hosts=hosts), code=LIVE_JS)
        self.live_src.js_on_change("data", live_js)
        self.doc.js_on_event("document_ready", live_js)

        left = column(row(self.pair_select, self.price_now, sizing_mode="stretch_width"),
                      self.price_fig, sizing_mode="stretch_width")
        right = column(self.cap_fig, self.health_div,
                       row(self.lat_fig, self.trend_fig, sizing_mode="stretch_width"),
                       sizing_mode="stretch_width")
        root = column(self.header, self.table, row(left, right, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
        root.styles = {"background-color": "#15191e", "padding": "4px 10px"}
        self.doc.theme = "dark_minimal"
        self.doc.template = Template(PAGE_TEMPLATE)
        self.doc.add_root(root)
        for model in (self.push_clock, self.push_ack, self.live_src, self.table_src):
            self.doc.add_root(model)
        self.doc.title = self.hub.title

    # ------------------------------------------------------------ scheduling
    def _schedule(self, delay_ns: int) -> None:
        if self.closed:
            return
        if delay_ns <= 0:
            self.doc.add_next_tick_callback(self._run)
        else:
            delay_ms = delay_ns / 1e6
            self.doc.add_next_tick_callback(
                lambda: self.doc.add_timeout_callback(self._run, delay_ms))

    def _run(self) -> None:
        if not self.closed:
            self.pusher.run()

    def _on_ack(self, attr: str, old: list, new: list) -> None:
        if new:
            self.pusher.ack(int(new[0]))

    def _on_pair(self, attr: str, old: str, new: str) -> None:
        if not new or new == old:
            return
        self.pair_user = True
        self._show_pair(parse_pair_id(new))
        self.pusher.notify()

    # ------------------------------------------------------------ the push
    def _push(self, now_ns: int) -> bool:
        """Apply everything this session has not shown yet; True if anything changed.

        ``push_clock.tags`` gets ``[push number, now_ns]`` (the rate limiter's
        clock) with every push, so a client can count and space pushes.
        """
        wall = self.hub.wall_ns()
        agg = self.agg
        changed = False
        with agg.lock:
            opp = agg.opportunities
            new_rows = opp.rows_after(self.sig_cursor)
            best = opp.best(wall)
            new_best = best.seq if best is not None else 0
            new_rows = new_rows[-self.max_rows:]
            rows_data = [r.display() for r in new_rows]
            book = agg.book
            summary = (book.opportunities, book.capturable_usd_e8 + book.pending_capturable_usd_e8(),
                       book.signals, book.opportunities_unpriced, new_best,
                       agg.health.last_block, self._rpc_state(agg),
                       (agg.gas.base_fee_wei + agg.gas.priority_fee_wei) if agg.gas else None)
            slow = now_ns - self.slow_at >= SLOW_PANEL_NS
            cap_points = agg.capturable_after(self.capturable_cursor) if slow else []
            best_text = (f"{format_usd_e8(best.net_usd_e8)} · {best.path}" if best else "–")
            pairs_version = agg.prices.pairs_version
            pair_options = agg.prices.pair_options() if pairs_version != self.pairs_version else None
            default_pair = agg.prices.default_pair()
            price_updates = self._collect_prices(agg) if self.pair else None
            health = (self._collect_health(agg)
                      if slow and agg.health.version != self.health_version else None)

        if rows_data:
            self.sig_cursor = new_rows[-1].seq
            self._stream_rows(new_rows, rows_data, new_best)
            changed = True
        if new_best != self.best_seq:
            self._move_best(new_best)
            changed = True
        live = dict(self.live)
        if summary != self.summary_key or best_text != live.get("best"):
            self.summary_key = summary
            live["header"] = self._header_html(summary, best_text)
            live["best"] = best_text
        if cap_points:
            self.capturable_cursor = cap_points[-1][0]
            self.cap_src.stream({"block": [b for _, b, _ in cap_points],
                                 "usd": [v / 1e8 for _, _, v in cap_points]}, rollover=agg.capturable.maxlen)
            changed = True
        if pair_options is not None:
            self.pairs_version = pairs_version
            self.pair_select.options = [(k, v) for k, v in pair_options]
            if not self.pair_user and default_pair is not None and default_pair != self.pair:
                self._show_pair(default_pair)
                self.pair_select.value = pair_id(default_pair)
                with agg.lock:
                    price_updates = self._collect_prices(agg)
            changed = True
        if price_updates:
            changed |= self._apply_prices(price_updates, live)
        if health is not None:
            self._apply_health(health, live)
            changed = True
        if cap_points or health is not None:
            self.slow_at = now_ns
        if live != self.live:
            self.live = live
            slots = [(host, slot) for host, slot in LIVE_SLOTS if host in live]
            self.live_src.data = {"slot": [slot for _, slot in slots], "host": [h for h, _ in slots],
                                  "html": [live[h] for h, _ in slots]}
            changed = True
        if changed:
            self.push_seq += 1
            self.push_clock.tags = [self.push_seq, now_ns]
        return changed

    # -- opportunities
    def _stream_rows(self, rows: list, data: list[dict], best_seq: int) -> None:
        new: dict[str, list] = {k: [d[k] for d in data] for k in TABLE_FIELDS[:-2]}
        new["bg"] = [BEST_BG if r.seq == best_seq else ROW_BG for r in rows]
        new["fs"] = ["bold" if r.seq == best_seq else "normal" for r in rows]
        self.table_src.stream(new, rollover=self.max_rows)
        self.table_seqs.extend(r.seq for r in rows)
        extra = len(self.table_seqs) - self.max_rows
        if extra > 0:
            del self.table_seqs[:extra]
        if best_seq and any(r.seq == best_seq for r in rows):
            self._move_best(best_seq, already_marked=True)

    def _row_index(self, seq: int) -> int | None:
        i = bisect.bisect_left(self.table_seqs, seq)
        return i if i < len(self.table_seqs) and self.table_seqs[i] == seq else None

    def _move_best(self, new_best: int, already_marked: bool = False) -> None:
        bg, fs = [], []
        old = self._row_index(self.best_seq) if self.best_seq and self.best_seq != new_best else None
        if old is not None:
            bg.append((old, ROW_BG))
            fs.append((old, "normal"))
        new = None if already_marked else (self._row_index(new_best) if new_best else None)
        if new is not None:
            bg.append((new, BEST_BG))
            fs.append((new, "bold"))
        if bg:
            self.table_src.patch({"bg": bg, "fs": fs})
        self.best_seq = new_best

    @staticmethod
    def _rpc_state(agg: Aggregator) -> bool | None:
        """True when every component that talks RPC is connected, False when one is not,
        None when no component reports RPC at all."""
        snap = agg.health.metrics
        if not snap:
            return None
        conn = [d["gauges"].get("rpc_connected", 0) for d in snap["components"].values()
                if d["counters"].get("rpc_reconnects", 0) or d["gauges"].get("rpc_connected", 0)]
        return (bool(conn) and all(conn)) if conn else None

    def _header_html(self, summary: tuple, best_text: str) -> str:
        """The headline: capturable profit (one trade per pool per block), opportunities (a
        cycle while it stays profitable, republications included once) and signals."""
        opps, total, signals, unpriced, _, block, rpc, gas_wei = summary
        rpc_html = ("<span class='ap-ok'>● connected</span>" if rpc else
                    "<span class='ap-bad'>● disconnected</span>" if rpc is False else "–")
        unpriced_html = f" <span class='ap-kpi'>({unpriced:,} unpriced)</span>" if unpriced else ""
        return (f"<div class='ap-bar'><span class='ap-title'>{self.hub.title}</span>"
                f"<span class='ap-kpi'>capturable profit<b id='ap-total'>{format_usd_e8(total)}</b></span>"
                f"<span class='ap-kpi'>opportunities<b id='ap-opps'>{opps:,}</b>{unpriced_html}</span>"
                f"<span class='ap-kpi'>signals<b id='ap-signals'>{signals:,}</b></span>"
                f"<span class='ap-kpi'>best of the last hour<b id='ap-best'>{best_text}</b></span>"
                f"<span class='ap-kpi'>last block<b id='ap-block'>{block:,}</b></span>"
                f"<span class='ap-kpi'>gas<b id='ap-gas'>{'–' if gas_wei is None else f'{gas_wei / 1e9:,.1f} gwei'}</b></span>"
                f"<span class='ap-kpi'>RPC<b id='ap-rpc'>{rpc_html}</b></span></div>")

    # -- prices
    def _show_pair(self, key: tuple[bytes, bytes]) -> None:
        """Switch the plot to another pair: drop the old lines, start cursors at 0."""
        self.pair = key
        for i in set(self.pool_slot.values()):
            src, item, r = self.price_slots[i]
            src.data = {"t": [], "price": []}
            item.visible = r.visible = False
        self.pool_cursor.clear()
        self.pool_slot.clear()

    def _collect_prices(self, agg: Aggregator) -> list | None:
        pair = agg.prices.pairs.get(self.pair) if self.pair else None
        if pair is None:
            return None
        out = []
        for pool, ps in pair.pools.items():
            cur = self.pool_cursor.get(pool, 0)
            t, p, new_cur = ps.points_after(cur) if ps.total > cur else ([], [], cur)
            out.append((pool, ps.label, t, p, new_cur, ps.last_exact, ps.last_block))
        return [pair.label, out]

    def _apply_prices(self, upd: list, live: dict[str, str]) -> bool:
        label, pools = upd
        changed = False
        for pool, plabel, t, p, cur, exact, block in pools:
            slot = self.pool_slot.get(pool)
            if slot is None:
                if len(self.pool_slot) >= PRICE_LINES:
                    continue                  # listed in the table beside the plot, not drawn
                slot = self.pool_slot[pool] = len(self.pool_slot)
                _, item, r = self.price_slots[slot]
                item.label = value(plabel)    # a literal, not a column name
                item.visible = r.visible = True
                changed = True
            if t:
                self.price_slots[slot][0].stream({"t": t, "price": p},
                                                 rollover=self.agg.prices.history)
                self.pool_cursor[pool] = cur
                changed = True
        if changed:
            self.price_fig.title.text = f"{label}: price per venue"
            quotes = [(plabel, exact) for _, plabel, _, _, _, exact, _ in pools if exact]
            html = "".join(f"<tr><td>{n}</td><td class='n'>{format_fraction(x, 8)}</td></tr>"
                           for n, x in quotes)
            spread = ""
            if len(quotes) >= 2:
                lo = min(x for _, x in quotes)
                hi = max(x for _, x in quotes)
                bps = (hi / lo - 1) * 10_000
                spread = f"<div class='ap-kpi'>spread now <b>{float(bps):.1f} bps</b></div>"
            live["price_now"] = (f"<table class='ap'><tr><th>venue</th><th>{label}</th></tr>"
                                 f"{html}</table>{spread}")
        return changed

    # -- health
    def _collect_health(self, agg: Aggregator) -> dict:
        """The rendered health panel: built once per health version, shared by all sessions
        (every session runs on the same event loop, so the cache needs no lock)."""
        h = agg.health
        cache = self.hub.health_cache
        if cache.get("version") != h.version:
            cache.clear()
            cache.update(render_health(h, self.hub.latency_component))
            cache["version"] = h.version
        return cache

    def _apply_health(self, hd: dict, live: dict[str, str]) -> None:
        self.health_version = hd["version"]
        live["health"] = hd["html"]
        labels, counts = hd["lat_labels"], hd["lat_counts"]
        if list(self.lat_fig.x_range.factors) != labels:
            self.lat_fig.x_range.factors = labels
        if self.lat_src.data["count"] != counts or self.lat_src.data["bucket"] != labels:
            self.lat_src.data = {"bucket": labels, "count": counts}
        new = [(t, p) for t, p in hd["trend"] if t > self.trend_last]
        if new:
            data: dict[str, list] = {"t": [t for t, _ in new]}
            for k in self.trend_keys:
                data[k] = [p.get(k, 0.0) for _, p in new]
            self.trend_src.stream(data, rollover=TREND_POINTS)
            self.trend_last = new[-1][0]


def render_checks(snap: dict, component: str = "execution") -> str:
    """The execution panel: how the signals fared when re-executed by real contract code
    (confirmation rate, each status, timeouts) and the check latency quantiles; "" without checks."""
    d = snap["components"].get(component)
    if d is None or not d["counters"].get("checks"):
        return ""
    c = d["counters"]
    done = sum(c.get(k, 0) for k in ("confirmed", "changed", "unprofitable", "reverted"))
    rate = f"{100 * c.get('confirmed', 0) / done:.1f} %" if done else "–"
    lat = d["latency"]["buckets"]
    qs = " · ".join(f"p{q * 100:g} <b>{_fmt_ns(histogram_quantile(q, snap['bounds_ns'], lat))}</b>"
                    for q in (0.5, 0.99))
    sent = (f" · sent {c.get('tx_sent', 0):,} · included {c.get('tx_included', 0):,} · failed {c.get('tx_failed', 0):,}"
            if c.get("tx_sent") else "")
    return (f"<div class='ap-kpi' id='ap-checks'>checks <b>{c['checks']:,}</b> · confirmed <b>{rate}</b>"
            f" ({c.get('confirmed', 0):,}) · changed {c.get('changed', 0):,} · unprofitable "
            f"{c.get('unprofitable', 0):,} · reverted {c.get('reverted', 0):,} · timeouts "
            f"{c.get('check_timeouts', 0):,} · skipped {c.get('signals_skipped', 0):,}{sent} · check latency {qs}</div>")


def render_health(h: Any, latency_component: str) -> dict:
    """HTML of the health panel and the latency histogram bars, from ``Health`` state."""
    parts = ["<div class='ap-h'>Rings</div><table class='ap'><tr><th>ring</th>"
             "<th>policy</th><th>frames/s</th><th>published</th><th>producer</th>"
             "<th>waits</th><th>consumer</th><th>lag</th><th>lost</th></tr>"]
    for rname, st in sorted(h.rings.items()):
        rate = h.ring_rate(rname)
        prod = st.get("producer", {})
        cons = st.get("consumers") or [{}]
        for i, c in enumerate(cons):
            state = prod.get("state", "–")
            cls = "ap-ok" if state == "alive" else "ap-bad"
            lead = (f"<td>{rname}</td><td>{st.get('policy', '')} {st.get('capacity', 0) >> 10:,} KiB</td>"
                    f"<td class='n'>{_fmt_rate(rate)}</td>"
                    f"<td class='n'>{prod.get('frames', 0):,}</td>"
                    f"<td><span class='{cls}'>{state}</span></td>"
                    f"<td class='n'>{prod.get('waits', 0):,}</td>") if i == 0 else "<td></td>" * 6
            lag = c.get("lag_bytes")
            cstate = c.get("state", "active")
            parts.append(f"<tr>{lead}<td>{c.get('name', '–')}"
                         f"{'' if cstate == 'active' else f' ({cstate})'}</td>"
                         f"<td class='n'>{'' if lag is None else f'{lag:,} B'}</td>"
                         f"<td class='n'>{c.get('lost_frames', '')}</td></tr>")
    parts.append("</table>")
    snap = h.metrics
    lat_labels: list[str] = []
    lat_counts: list[int] = []
    if snap:
        parts.append("<div class='ap-h'>Components</div><table class='ap'><tr><th>component</th>"
                     "<th>in/s</th><th>out/s</th><th>rejects</th><th>crc rejects</th><th>lost</th>"
                     "<th>pools</th><th>RPC</th><th>last block</th><th>signals</th></tr>")
        for name, d in snap["components"].items():
            c, g = d["counters"], d["gauges"]
            rpc_s = ("<span class='ap-ok'>up</span>" if g["rpc_connected"] else
                     "<span class='ap-bad'>down</span>" if c["rpc_reconnects"] else "–")
            restarts = f" (restarts {c['restarts']})" if c["restarts"] else ""
            parts.append(f"<tr><td>{name}{restarts}</td>"
                         f"<td class='n'>{_fmt_rate(h.component_rate(name, 'frames_in'))}</td>"
                         f"<td class='n'>{_fmt_rate(h.component_rate(name, 'frames_out'))}</td>"
                         f"<td class='n'>{c['frames_rejected']:,}</td>"
                         f"<td class='n'>{c['checksum_rejects']:,}</td>"
                         f"<td class='n'>{c['frames_lost']:,}</td><td class='n'>{g['pools']:,}"
                         f"{_waiting(g)}</td>"
                         f"<td>{rpc_s}</td><td class='n'>{g['last_block']:,}</td>"
                         f"<td class='n'>{c['signals']:,}</td></tr>")
        parts.append("</table>")
        parts.append(render_checks(snap))
        if h.waiting:
            names = sorted(h.waiting.values())
            more = f" and {len(names) - 10:,} more" if len(names) > 10 else ""
            parts.append(f"<div class='ap-h'>Pools waiting on a snapshot ({len(names):,})</div>"
                         f"<div id='ap-waiting'>{', '.join(names[:10])}{more}</div>")
        if latency_component in snap["components"]:
            bounds = snap["bounds_ns"]
            window = h.latency_window(latency_component, LATENCY_WINDOW_S)
            counts = window if sum(window) else snap["components"][latency_component]["latency"]["buckets"]
            span = f"last {LATENCY_WINDOW_S}s" if sum(window) else "since start"
            qs = " · ".join(f"p{q * 100:g} <b>{_fmt_ns(histogram_quantile(q, bounds, counts))}</b>"
                            for q in (0.5, 0.9, 0.99, 0.999))
            parts.insert(0, f"<div class='ap-kpi' id='ap-latency'>frame-in → signal-out ({latency_component}, "
                            f"{span}): {qs} · n={sum(counts):,}</div>")
            labels = [_bucket_label(b) for b in bounds] + [">" + _fmt_ns(bounds[-1]).replace(" ", "")]
            nz = [i for i, c in enumerate(counts) if c]
            if nz:
                lo, hi = max(0, nz[0] - 1), min(len(counts), nz[-1] + 2)
                lat_labels, lat_counts = labels[lo:hi], list(counts[lo:hi])
    rej = ", ".join(f"{k} {v:,}" for k, v in sorted(h.rejects.items())) or "none"
    read = ", ".join(f"{k} {v:,}" for k, v in sorted(h.frames_read.items())) or "none"
    lost = sum(h.lost.values())
    skipped = sum(h.skipped.values())
    parts.append(f"<div class='ap-kpi'>dashboard read: {read} · rejected: {rej}"
                 f"{f' · lapped by {lost:,}' if lost else ''}"
                 f"{f' · burst frames skipped {skipped:,}' if skipped else ''}</div>")
    for src, err in sorted(h.errors.items()):
        parts.append(f"<div class='ap-bad'>{src}: {err}</div>")
    return {"html": "".join(parts), "lat_labels": lat_labels, "lat_counts": lat_counts,
            "trend": list(h.trend)}
