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
from datetime import datetime, timezone
from typing import Any, Callable

from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource, CustomJS, DataTable, Div, HoverTool, InlineStyleSheet, Legend, NumeralTickFormatter, Select,
    StringFormatter, TableColumn,
)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from alphapulse.dashboard.aggregate import (
    NS_PER_S, Aggregator, age_text, format_fraction, format_usd_e8, pair_id, parse_pair_id,
)
from alphapulse.dashboard.ratelimit import CoalescingPusher, RateLimiter
from alphapulse.metrics import histogram_quantile

log = logging.getLogger("alphapulse.dashboard")

ROW_BG, BEST_BG = "#ffffff", "#ffe08a"
TABLE_FIELDS = ("seq", "time", "path", "venues", "amount_in", "amount_in_units", "gross_token",
                "gross_usd", "net_usd", "gas_usd", "gas_wei", "spread", "block", "age",
                "signal_id", "bg", "fs")
LATENCY_WINDOW_S = 10

CSS = """
  .ap-bar { display:flex; gap:22px; align-items:baseline; font-family: system-ui, sans-serif;
            padding: 6px 4px; }
  .ap-title { font-size: 22px; font-weight: 700; color:#14213d; }
  .ap-kpi { font-size: 13px; color:#555; }
  .ap-kpi b { font-size: 18px; color:#14213d; margin-left:4px; }
  .ap-ok { color:#1a7f37; font-weight:700; } .ap-bad { color:#c62828; font-weight:700; }
  .ap-h { font: 600 14px system-ui, sans-serif; color:#14213d; margin: 4px 0; }
  table.ap { border-collapse: collapse; font: 12px system-ui, sans-serif; width: 100%; }
  table.ap th { text-align:left; color:#666; font-weight:600; border-bottom:1px solid #ccd;
                padding: 2px 6px; }
  table.ap td { padding: 2px 6px; border-bottom: 1px solid #eef; font-variant-numeric: tabular-nums; }
  table.ap td.n { text-align:right; }
"""

#: Newest first: set the table's sort on the seq column once the page is rendered
#: (SlickGrid re-applies it after every stream/patch, see DataTableView.updateGrid).
SORT_NEWEST_FIRST_JS = """
const view = Bokeh.index.find_one(table)
if (view != null && view.grid != null) {
  const col = view.grid.getColumns().find((c) => c.field == "seq")
  if (col != null) {
    view.grid.setSortColumn(col.id, false)
    view.updateGrid()
  }
}
"""


def _utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


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
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        RateLimiter(max_updates_per_s)                  # validate early, clear error
        self.agg = agg
        self.max_updates_per_s = max_updates_per_s
        self.latency_component = latency_component
        self.title = title
        self.clock_ns = clock_ns
        self.wall_ns = wall_ns
        self._lock = threading.Lock()
        self.sessions: set[SessionView] = set()
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
                                       self._push, hub.clock_ns)
        self.push_seq = 0
        # cursors: what this session already shows
        self.sig_cursor = 0
        self.table_seqs: list[int] = []
        self.table_ts: list[int] = []
        self.best_seq = 0
        self.summary_key: tuple | None = None
        self.age_refresh_ns = 0
        self.pairs_version = -1
        self.pair: tuple[bytes, bytes] | None = None
        self.pair_user = False
        self.pool_cursor: dict[bytes, int] = {}
        self.pool_src: dict[bytes, ColumnDataSource] = {}
        self.health_version = -1
        self.trend_keys: list[str] = []
        self._build()
        self.pusher.notify()

    # ------------------------------------------------------------ models
    def _build(self) -> None:
        max_rows = self.agg.opportunities.rows.maxlen
        css = InlineStyleSheet(css=CSS)       # Divs render in shadow DOM: style each one
        self.header = Div(text="", sizing_mode="stretch_width", stylesheets=[css])
        self.table_src = ColumnDataSource({k: [] for k in TABLE_FIELDS}, name="opportunities")
        hl = dict(background_color={"field": "bg"}, font_style={"field": "fs"})
        num = dict(hl, text_align="right")
        cols = [
            TableColumn(field="seq", title="#", width=45, formatter=StringFormatter(**num)),
            TableColumn(field="time", title="time (UTC)", width=95, formatter=StringFormatter(**hl)),
            TableColumn(field="path", title="path", width=200, formatter=StringFormatter(**hl)),
            TableColumn(field="venues", title="venues", width=190, formatter=StringFormatter(**hl)),
            TableColumn(field="amount_in", title="input", width=190, formatter=StringFormatter(**num)),
            TableColumn(field="gross_token", title="gross (start token)", width=200,
                        formatter=StringFormatter(**num)),
            TableColumn(field="gross_usd", title="gross $", width=85, formatter=StringFormatter(**num)),
            TableColumn(field="net_usd", title="net $", width=85, formatter=StringFormatter(**num)),
            TableColumn(field="gas_usd", title="gas $", width=70, formatter=StringFormatter(**num)),
            TableColumn(field="gas_wei", title="gas (wei)", width=140, formatter=StringFormatter(**num)),
            TableColumn(field="spread", title="spread", width=70, formatter=StringFormatter(**num)),
            TableColumn(field="block", title="block", width=80, formatter=StringFormatter(**num)),
            TableColumn(field="age", title="age", width=60, formatter=StringFormatter(**num)),
            TableColumn(field="amount_in_units", title="input (units)", width=190,
                        formatter=StringFormatter(**num)),
        ]
        self.table = DataTable(source=self.table_src, columns=cols, index_position=None,
                               height=330, sizing_mode="stretch_width", row_height=24,
                               name="opportunities_table", selectable=True)
        self.doc.js_on_event("document_ready", CustomJS(args=dict(table=self.table),
                                                        code=SORT_NEWEST_FIRST_JS))
        self.max_rows = max_rows

        # prices
        self.pair_select = Select(title="Token pair", options=[], value="", width=260)
        self.pair_select.on_change("value", self._on_pair)
        self.price_fig = figure(height=330, sizing_mode="stretch_width", x_axis_type="datetime",
                                title="Price per venue", toolbar_location="right",
                                tools="pan,xwheel_zoom,box_zoom,reset,save")
        self.price_fig.add_layout(Legend(click_policy="hide", location="top_left"), "right")
        self.price_fig.add_tools(HoverTool(tooltips=[("venue", "$name"), ("price", "@price{0,0.[000000]}"),
                                                     ("time", "@t{%H:%M:%S.%3N}")],
                                           formatters={"@t": "datetime"}))
        self.price_fig.yaxis.formatter = NumeralTickFormatter(format="0,0.[000000]")
        self.price_now = Div(text="", sizing_mode="stretch_width", stylesheets=[css])

        # health
        self.health_div = Div(text="", sizing_mode="stretch_width", stylesheets=[css])
        self.lat_src = ColumnDataSource({"bucket": [], "count": []})
        self.lat_fig = figure(height=200, sizing_mode="stretch_width", x_range=[], toolbar_location=None,
                              title=f"Frame-in → signal-out latency (last {LATENCY_WINDOW_S}s)")
        self.lat_fig.vbar(x="bucket", top="count", width=0.8, source=self.lat_src, color="#3b6ea5")
        self.lat_fig.xaxis.major_label_orientation = 0.9
        self.lat_fig.y_range.start = 0
        self.trend_src = ColumnDataSource({"t": []})
        self.trend_fig = figure(height=200, sizing_mode="stretch_width", x_axis_type="datetime",
                                title="Frames/s per ring", toolbar_location=None)
        self.trend_fig.add_layout(Legend(location="top_left"), "right")

        self.push_clock = Div(text="", visible=False, name="push_clock")

        left = column(row(self.pair_select, self.price_now, sizing_mode="stretch_width"),
                      self.price_fig, sizing_mode="stretch_width")
        right = column(self.health_div, row(self.lat_fig, self.trend_fig, sizing_mode="stretch_width"),
                       sizing_mode="stretch_width")
        root = column(self.header, self.table, row(left, right, sizing_mode="stretch_width"),
                      self.push_clock, sizing_mode="stretch_width")
        self.doc.add_root(root)
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
            rows_data = [r.display(wall) for r in new_rows]
            summary = (opp.count, opp.total_net_usd_e8, opp.unpriced_count, new_best,
                       agg.health.last_block, wall // NS_PER_S)
            best_text = (f"{format_usd_e8(best.net_usd_e8)} · {best.path}" if best else "–")
            pairs_version = agg.prices.pairs_version
            pair_options = agg.prices.pair_options() if pairs_version != self.pairs_version else None
            default_pair = agg.prices.default_pair()
            price_updates = self._collect_prices(agg) if self.pair else None
            health = self._collect_health(agg, wall) if agg.health.version != self.health_version else None

        if rows_data:
            self.sig_cursor = new_rows[-1].seq
            self._stream_rows(new_rows, rows_data, new_best)
            changed = True
        if new_best != self.best_seq:
            self._move_best(new_best)
            changed = True
        if self.table_seqs and wall - self.age_refresh_ns >= NS_PER_S:
            self.age_refresh_ns = wall
            ages = [age_text(wall - ts) for ts in self.table_ts]
            self.table_src.patch({"age": [(slice(0, len(ages)), ages)]})
            changed = True
        if summary != self.summary_key:
            self.summary_key = summary
            self.header.text = self._header_html(summary, best_text, opp_unpriced=summary[2])
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
            changed |= self._apply_prices(price_updates)
        if health is not None:
            self._apply_health(health)
            changed = True
        if changed:
            self.push_seq += 1
            self.push_clock.tags = [self.push_seq, now_ns]
        return changed

    # -- opportunities
    def _stream_rows(self, rows: list, data: list[dict], best_seq: int) -> None:
        if len(rows) > self.max_rows:
            rows, data = rows[-self.max_rows:], data[-self.max_rows:]
        new = {k: [] for k in TABLE_FIELDS}
        for r, d in zip(rows, data):
            d["time"] = _utc(r.ts_ns)
            d["bg"], d["fs"] = (BEST_BG, "bold") if r.seq == best_seq else (ROW_BG, "normal")
            for k in TABLE_FIELDS:
                new[k].append(d[k])
        self.table_src.stream(new, rollover=self.max_rows)
        self.table_seqs.extend(r.seq for r in rows)
        self.table_ts.extend(r.ts_ns for r in rows)
        extra = len(self.table_seqs) - self.max_rows
        if extra > 0:
            del self.table_seqs[:extra]
            del self.table_ts[:extra]
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

    def _header_html(self, summary: tuple, best_text: str, opp_unpriced: int) -> str:
        count, total, unpriced, _, block, _ = summary
        h = self.agg.health
        rpc = None
        if h.metrics:
            conn = [d["gauges"].get("rpc_connected", 0) for d in h.metrics["components"].values()
                    if d["counters"].get("rpc_reconnects", 0) or d["gauges"].get("rpc_connected", 0)]
            rpc = bool(conn) and all(conn)
        rpc_html = ("<span class='ap-ok'>● connected</span>" if rpc else
                    "<span class='ap-bad'>● disconnected</span>" if rpc is False else "–")
        unpriced_html = f" <span class='ap-kpi'>(+{unpriced:,} unpriced)</span>" if opp_unpriced else ""
        return (f"<div class='ap-bar'><span class='ap-title'>{self.hub.title}</span>"
                f"<span class='ap-kpi'>opportunities<b id='ap-count'>{count:,}</b>{unpriced_html}</span>"
                f"<span class='ap-kpi'>net profit found<b id='ap-total'>{format_usd_e8(total)}</b></span>"
                f"<span class='ap-kpi'>best of the last hour<b id='ap-best'>{best_text}</b></span>"
                f"<span class='ap-kpi'>last block<b id='ap-block'>{block:,}</b></span>"
                f"<span class='ap-kpi'>RPC<b>{rpc_html}</b></span></div>")

    # -- prices
    def _show_pair(self, key: tuple[bytes, bytes]) -> None:
        """Switch the plot to another pair: drop the old lines, start cursors at 0."""
        self.pair = key
        self.price_fig.renderers = []
        self.price_fig.legend.items = []
        self.pool_cursor.clear()
        self.pool_src.clear()

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

    def _apply_prices(self, upd: list) -> bool:
        label, pools = upd
        changed = False
        for pool, plabel, t, p, cur, exact, block in pools:
            src = self.pool_src.get(pool)
            if src is None:
                src = ColumnDataSource({"t": [], "price": []})
                color = Category10_10[len(self.pool_src) % 10]
                self.price_fig.step(x="t", y="price", source=src, line_width=2, color=color,
                                    legend_label=plabel, name=plabel, mode="after")
                self.pool_src[pool] = src
                changed = True
            if t:
                src.stream({"t": t, "price": p}, rollover=self.agg.prices.history)
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
            self.price_now.text = (f"<table class='ap'><tr><th>venue</th><th>{label}</th></tr>"
                                   f"{html}</table>{spread}")
        return changed

    # -- health
    def _collect_health(self, agg: Aggregator, wall: int) -> dict:
        h = agg.health
        snap = h.metrics
        comps = []
        lat = None
        if snap:
            bounds = snap["bounds_ns"]
            for name, d in snap["components"].items():
                c, g = d["counters"], d["gauges"]
                comps.append((name, h.component_rate(name, "frames_in"),
                              h.component_rate(name, "frames_out"), c["frames_rejected"],
                              c["checksum_rejects"], c["frames_lost"], g["pools"],
                              g["rpc_connected"], c["rpc_reconnects"], g["last_block"],
                              c["signals"], c["restarts"]))
            comp = self.hub.latency_component
            if comp in snap["components"]:
                lat = (bounds, h.latency_window(comp, LATENCY_WINDOW_S),
                       snap["components"][comp]["latency"]["buckets"])
        rings = []
        for rname, st in sorted(h.rings.items()):
            rings.append((rname, h.ring_rate(rname), st))
        return {"version": h.version, "comps": comps, "rings": rings, "lat": lat,
                "rejects": dict(h.rejects), "read": dict(h.frames_read),
                "trend": list(h.trend)[-1:] if self.health_version >= 0 else list(h.trend),
                "errors": dict(h.errors)}

    def _apply_health(self, hd: dict) -> None:
        self.health_version = hd["version"]
        parts = ["<div class='ap-h'>Rings</div><table class='ap'><tr><th>ring</th>"
                 "<th>policy</th><th>frames/s</th><th>published</th><th>producer</th>"
                 "<th>waits</th><th>consumer</th><th>lag</th><th>lost</th></tr>"]
        for rname, rate, st in hd["rings"]:
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
        if hd["comps"]:
            parts.append("<div class='ap-h'>Components</div><table class='ap'><tr><th>component</th>"
                         "<th>in/s</th><th>out/s</th><th>rejects</th><th>crc rejects</th><th>lost</th>"
                         "<th>pools</th><th>RPC</th><th>last block</th><th>signals</th></tr>")
            for (name, rin, rout, rej, crc, lost, pools, rpc, reconn, block, sigs, restarts) in hd["comps"]:
                rpc_s = ("<span class='ap-ok'>up</span>" if rpc else
                         f"<span class='ap-bad'>down</span>" if reconn else "–")
                parts.append(f"<tr><td>{name}{f' (restarts {restarts})' if restarts else ''}</td>"
                             f"<td class='n'>{_fmt_rate(rin)}</td><td class='n'>{_fmt_rate(rout)}</td>"
                             f"<td class='n'>{rej:,}</td><td class='n'>{crc:,}</td>"
                             f"<td class='n'>{lost:,}</td><td class='n'>{pools:,}</td><td>{rpc_s}</td>"
                             f"<td class='n'>{block:,}</td><td class='n'>{sigs:,}</td></tr>")
            parts.append("</table>")
        rej = ", ".join(f"{k} {v:,}" for k, v in sorted(hd["rejects"].items())) or "none"
        read = ", ".join(f"{k} {v:,}" for k, v in sorted(hd["read"].items())) or "none"
        parts.append(f"<div class='ap-kpi'>dashboard read: {read} · rejected: {rej}</div>")
        for src, err in sorted(hd["errors"].items()):
            parts.append(f"<div class='ap-bad'>{src}: {err}</div>")
        if hd["lat"] is not None:
            bounds, window, total = hd["lat"]
            counts = window if sum(window) else total
            qs = " · ".join(f"p{q * 100:g} <b>{_fmt_ns(histogram_quantile(q, bounds, counts))}</b>"
                            for q in (0.5, 0.9, 0.99, 0.999))
            parts.insert(0, f"<div class='ap-kpi'>frame-in → signal-out ({self.hub.latency_component}, "
                            f"{'last ' + str(LATENCY_WINDOW_S) + 's' if sum(window) else 'since start'}): "
                            f"{qs} · n={sum(counts):,}</div>")
            labels = [_bucket_label(b) for b in bounds] + [">" + _fmt_ns(bounds[-1]).replace(" ", "")]
            nz = [i for i, c in enumerate(counts) if c]
            lo, hi = (max(0, nz[0] - 1), min(len(counts), nz[-1] + 2)) if nz else (0, 0)
            if list(self.lat_fig.x_range.factors) != labels[lo:hi]:
                self.lat_fig.x_range.factors = labels[lo:hi]
            self.lat_src.data = {"bucket": labels[lo:hi], "count": list(counts[lo:hi])}
        self.health_div.text = "".join(parts)
        for t_ms, point in hd["trend"]:
            for k in point:
                if k.startswith("ring:") and k not in self.trend_keys:
                    self._add_trend_line(k)
            data = {"t": [t_ms]}
            for k in self.trend_keys:
                data[k] = [point.get(k, 0.0)]
            self.trend_src.stream(data, rollover=600)

    def _add_trend_line(self, key: str) -> None:
        self.trend_src.add([0.0] * len(self.trend_src.data["t"]), key)
        self.trend_keys.append(key)
        self.trend_fig.line(x="t", y=key, source=self.trend_src, line_width=2,
                            color=Category10_10[len(self.trend_keys) % 10],
                            legend_label=key.split(":", 1)[1])

