"""raceway's live dashboard: a Textual app that watches an engine through its monitor socket.

Run it as ``raceway-dashboard [--socket PATH]`` or ``python -m dashboard``.
It speaks to the engine only through the socket and :mod:`raceway.wire`
(nothing else of raceway is imported here), so it can watch an engine in any
process the user can reach.

Modules, one concern each:

- :mod:`dashboard.model` — the state: bounded race history, per-provider
  statistics and TTFT samples, the event log, filters. Plain Python, no Textual.
- :mod:`dashboard.render` — how that state looks: timelines, sparklines,
  table cells and log lines as Rich ``Text``, coloured from the app's theme.
- :mod:`dashboard.link` — finding engines' sockets and the reconnect back-off.
- :mod:`dashboard.racelist` — the Races table: a line-API widget drawing
  cached lines per race, cheap enough for 1,000 events/s.
- :mod:`dashboard.app` — the Textual app (layout and colour in ``dashboard.tcss``).
- :mod:`dashboard.fake_engine` — a stand-in engine serving a scripted stream,
  for tests, the benchmark and trying the dashboard without an engine.
"""
