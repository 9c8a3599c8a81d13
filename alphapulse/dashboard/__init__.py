"""The live dashboard: a Bokeh server fed by the signal and market-data rings and the
metrics block (issue 6).

How the pipeline starts it: a supervised component
``"alphapulse.dashboard.server:run_component"`` with the fields of
:class:`~alphapulse.dashboard.options.DashboardOptions` as kwargs (ring names,
metrics block name, host/port, ``rate_limit_hz``, ``tokens`` as
``(address, symbol, decimals)`` triples, ``venue_names``); standalone:
``python -m alphapulse.dashboard --help``.

Modules: ``aggregate`` (pure state: opportunities, exact prices, health),
``ratelimit`` (per-session cap with coalescing), ``app`` (one Bokeh document per
session), ``feed`` (reader threads), ``server`` (Bokeh server + threads),
``options`` (settings).
"""
from alphapulse.dashboard.options import DashboardOptions  # noqa: F401

__all__ = ["DashboardOptions"]
