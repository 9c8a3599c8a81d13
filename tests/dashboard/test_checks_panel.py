"""The dashboard's execution panel: confirmation rate, statuses and check latency from the
metrics block's execution counters."""
from alphapulse.dashboard.app import render_checks
from alphapulse.execution.component import COUNTERS
from alphapulse.metrics import DEFAULT_COUNTERS, MetricsBlock


def test_the_panel_shows_the_confirmation_rate_and_check_latency():
    m = MetricsBlock.create("alphapulse_test_checks_panel", ("strategy", "execution"),
                            counters=DEFAULT_COUNTERS + COUNTERS)
    try:
        assert render_checks(m.snapshot()) == ""          # no check yet: no panel
        for key, n in (("checks", 10), ("confirmed", 6), ("changed", 2), ("unprofitable", 1), ("reverted", 1),
                       ("check_timeouts", 3)):
            m.counter("execution", key).add(n)
        for _ in range(10):
            m.observe_latency_ns("execution", 900_000)
        html = render_checks(m.snapshot())
    finally:
        m.close()
    assert "confirmed <b>60.0 %</b> (6)" in html and "timeouts 3" in html and "reverted 1" in html
    assert "check latency p50 <b>" in html and "sent" not in html
