"""Configuration, the ranges: what each kind of numeric setting allows.

Every numeric field of the schema declares one of these on itself
(:func:`~raceway._checks.ranged`); :func:`~raceway._config_check.validate`
checks it with the setting's path. The models of ``_config.py`` and
``_config_providers.py`` share them, so a kind of number means the same
everywhere.
"""

from __future__ import annotations

from ._checks import Range

# What each numeric setting allows (checked by validate, with the setting's path).
POSITIVE_MS = Range(low=0, low_open=True, what="a positive number of milliseconds")
NON_NEGATIVE_MS = Range(low=0, what="0 or more milliseconds")
POSITIVE = Range(low=0, low_open=True, what="a positive number")
NON_NEGATIVE = Range(low=0, what="0 or more")
AT_LEAST_ONE = Range(low=1, what="1 or more")
PROBABILITY = Range(low=0, high=1, what="a probability between 0 and 1")
ANY_NUMBER = Range()
USD = Range(low=0, what="0 or more US dollars")
USD_PER_MTOK = Range(low=0, what="0 or more US dollars per million tokens")
#: Extra requests per race on average (0.1: one race in ten hedges); above 1
#: only makes sense with many providers, above 10 never.
EXTRA_LOAD = Range(low=0, high=10, what="between 0 and 10 extra requests per race on average (0.1: one race in ten)")
#: A lognormal's sigma past this draws times beyond any deadline (and overflows exp()).
SIGMA = Range(low=0, high=10, what="between 0 (exact) and 10")
