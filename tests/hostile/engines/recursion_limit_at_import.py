"""Lowers Python's recursion limit to 50 at import."""
import sys

from ...planted.engines.base import Value  # noqa: F401  (the target)

sys.setrecursionlimit(50)
