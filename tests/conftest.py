"""Shared test settings: hypothesis profiles.

``HYPOTHESIS_PROFILE`` picks one (default ``ci``):

* ``ci`` — a fixed, modest number of examples, derandomized, so CI runs are
  quick and reproducible (``.ci/run`` sets it);
* ``thorough`` — many more examples, randomized, for hunting bugs locally:
  ``HYPOTHESIS_PROFILE=thorough make test``.
"""

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
