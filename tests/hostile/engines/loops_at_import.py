"""A loop in C (holding the GIL) at import."""
from ...planted.engines.base import Value  # noqa: F401  (the target)

sum(range(10**12))
