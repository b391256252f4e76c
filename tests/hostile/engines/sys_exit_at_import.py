"""sys.exit(0) at import."""
import sys

from ...planted.engines.base import Value  # noqa: F401  (the target)

sys.exit(0)
