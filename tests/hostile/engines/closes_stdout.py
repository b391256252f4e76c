"""Closes stdout and stderr at import, Python's and the file descriptors."""
import os
import sys

from ...planted.engines.base import Value  # noqa: F401  (the target)

sys.stdout.close()
sys.stderr.close()
os.close(1)
os.close(2)
