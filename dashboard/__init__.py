"""raceway's live dashboard: a Textual app that watches an engine through its monitor socket.

Run it as ``raceway-dashboard [--socket PATH]`` or ``python -m dashboard``.
It speaks to the engine only through the socket and :mod:`raceway.wire`
(nothing else of raceway is imported here), so it can watch an engine in any
process the user can reach.

Modules, one concern each:

- :mod:`dashboard.views` — what is shown, as plain data: a race, a participant,
  a provider's figures, a log line, the filter.
- :mod:`dashboard.state` — the state and the views' queries: bounded race
  history, provider statistics and TTFT samples, the event log. No Textual.
- :mod:`dashboard.model` — the state, folded from wire messages. No Textual.
- :mod:`dashboard.render` — small pieces of how it looks (colours from the
  theme, glyphs, durations, names, sparklines, log lines) as Rich ``Text``.
- :mod:`dashboard.timeline` — a race's row in the table, its timeline, its details.
- :mod:`dashboard.link` — finding engines' sockets, reading their lines, reconnecting.
- :mod:`dashboard.racelist` — the Races table: a line-API widget drawing
  cached lines per race, cheap enough for 1,000 events/s.
- :mod:`dashboard.widgets` — the top bar and the panels, following reactive state.
- :mod:`dashboard.screens` — the dialogs: help, filter, pick an engine, a race's details.
- :mod:`dashboard.status` — what the top bar and an empty Races panel say about the link.
- :mod:`dashboard.process` — the process's garbage-collection tuning and screenshot directory.
- :mod:`dashboard.app` — the Textual app (layout and colour in ``dashboard.tcss``).

Its test double is the real engine: ``tests/replay_monitor.py`` replays a
recorded session of ``raceway demo --headless`` on the embedded sim providers.
"""
