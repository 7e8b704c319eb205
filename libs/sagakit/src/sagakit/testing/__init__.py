"""Test support shared by every package's tests: infrastructure fixtures and waiting helpers."""
