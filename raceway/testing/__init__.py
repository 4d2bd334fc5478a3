"""raceway.testing: property-test any race strategy, built-in or custom.

A strategy (``raceway.Strategy``) is a pure decision object: it is told facts
(attempt started, first token, completed, failed — in seconds since the race
began) and asked what to do (start an attempt, pick a winner, wait, give up).
Because it never touches trio or I/O, it can be run here on a virtual clock,
on thousands of drawn race timelines, in milliseconds::

    from raceway.testing import check_strategy
    from mypkg.strategies import Cheapest

    def test_cheapest_keeps_the_rules():
        check_strategy(Cheapest)

The pieces:

* :func:`race_scenarios` — a hypothesis strategy drawing :class:`Scenario`
  values: participants (priority, weight, score, hedge delay) each with a
  script (time to first token, completion, failure, hang, empty answer),
  a deadline (sometimes before anything can succeed), a grace window (zero,
  ordinary or huge) and a hedge budget. Times cluster on round values so
  that ties happen.
* :func:`simulate` — runs one strategy on one scenario the way the real race
  driver does, minus trio, and returns a :class:`Simulation`: who won when,
  or how the race failed, every fact and every decision.
* :func:`check_strategy` — the rules every strategy keeps (a winner started
  and succeeded; nothing starts twice; the decision never comes after the
  deadline; a success in hand is not thrown away, unless
  ``allow_give_up=True``; decide() never raises and returns only decisions),
  checked on many drawn scenarios. A broken rule raises ``AssertionError``
  with hypothesis's smallest counter-example as a timeline, e.g.
  ``a: start 0, fail 0.050 | b: start 0, token 0.120 -> strategy error at
  0.050: picked a, which failed at 0.050``.

The model and the engine agree: the project's own tests race drawn scenarios
through both and compare winners and times. Where they may not — a timer and
a fact at the very same instant, which trio may order either way — the
simulation lists the instant in :attr:`Simulation.ties`.

hypothesis is a test dependency of raceway: install it with
``pip install 'raceway[testing]'``. Control the cost with hypothesis settings
profiles (``settings.load_profile``) or ``check_strategy(..., max_examples=N)``.
"""

try:
    import hypothesis as _hypothesis  # noqa: F401  (fail here, with a clear message)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "raceway.testing needs hypothesis, which is not installed: "
        "pip install 'raceway[testing]' (or pip install 'hypothesis>=6.100')"
    ) from exc

from ._check import RULES as RULES
from ._check import broken_rule as broken_rule
from ._check import check_strategy as check_strategy
from ._draw import race_scenarios as race_scenarios
from ._scenario import Participant as Participant
from ._scenario import Scenario as Scenario
from ._simulate import Simulation as Simulation
from ._simulate import simulate as simulate

__all__ = [
    "RULES",
    "Participant",
    "Scenario",
    "Simulation",
    "broken_rule",
    "check_strategy",
    "race_scenarios",
    "simulate",
]
