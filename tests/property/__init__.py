"""Property tests: parsing and rendering hold for any text, not only for our examples.

The `ci` profile (the default) derives each test's examples from its own source
and keeps no example database, so a run gives the same verdict every time and
on every machine. `HYPOTHESIS_PROFILE=explore` searches at random, and further,
on a developer's machine; a failure it finds belongs in the test as an @example.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "explore",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=2_000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
