"""os._exit(0) at import: the process ends, saying "success"."""
import os

from ...planted.engines.base import Value  # noqa: F401  (the target)

os._exit(0)
