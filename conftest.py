"""Root conftest: registers the shared fixtures for every package's tests."""

pytest_plugins = ["sagakit.testing.fixtures"]
