"""Shared test settings: hypothesis profiles (ci is derandomized), and every
test leaves Python's recursion limit as it found it (the engine benchmark
raises it for micrograd, and a test of a recursive engine needs the default)."""

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(
    "ci" if os.environ.get("CI") else os.environ.get("GRADCERT_TEST_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _recursion_limit_restored():
    limit = sys.getrecursionlimit()
    yield
    sys.setrecursionlimit(limit)
