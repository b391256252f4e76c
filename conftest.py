"""The test run's tiers, and doctests that need an optional engine.

Tiers, as hypothesis has them: mark a test module (``pytestmark =
pytest.mark.e2e``) or a test with one of ``slow``, ``quality``,
``catalogue`` or ``e2e`` (see pyproject.toml); every other test, and
every doctest, is in the ``fast`` tier: ``python -m pytest -m fast`` is
the edit loop, ``python -m pytest`` runs every tier.

A module whose doctests need an optional package names it in
``__doctest_requires__``; they skip when it cannot be imported.
"""

import importlib.util
import os

import pytest

TIERS = ("slow", "quality", "catalogue", "e2e")


def pytest_collection_modifyitems(items):
    for item in items:
        if not any(item.get_closest_marker(t) for t in TIERS):
            item.add_marker(pytest.mark.fast)


def pytest_runtest_setup(item):
    test = getattr(item, "dtest", None)  # a doctest's
    if test is not None:
        for name in test.globs.get("__doctest_requires__", ()):
            if importlib.util.find_spec(name) is None:
                pytest.skip(f"the doctest needs {name}, which is not installed")


def pytest_runtest_logreport(report):
    """With SKIPPED_TESTS_LOG set, the ids of skipped tests are appended to that file
    (by the controller, under xdist): .ci/run reruns them once the optional engines
    are installed."""
    log = os.environ.get("SKIPPED_TESTS_LOG")
    if log and report.skipped and not os.environ.get("PYTEST_XDIST_WORKER"):
        with open(log, "a") as f:
            f.write(report.nodeid + "\n")
