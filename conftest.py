"""Hypothesis profiles for the whole suite (tests/ and the doctests in minifw/).

``ci`` (the default, used by ``.ci/run``) is derandomized and reads no example database: the
same examples every run, whatever earlier runs failed on, so CI never flakes and the counts in
``docs/fuzz.md`` are reproducible. ``dev`` draws fresh, many more examples for a longer local run:
``HYPOTHESIS_PROFILE=dev python -m pytest``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
