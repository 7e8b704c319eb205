"""Root conftest: registers the shared fixtures for every package's tests, and the profiles of
the property tests (hypothesis): a modest number of examples in `make test`; `make props` sets
HYPOTHESIS_PROFILE=props for many more."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["sagakit.testing.fixtures"]

settings.register_profile("default", max_examples=100, stateful_step_count=40, deadline=None)
settings.register_profile(
    "props",
    max_examples=3000,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
