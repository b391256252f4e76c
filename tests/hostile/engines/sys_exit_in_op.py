"""sys.exit(0) (SystemExit) in log above 1e100."""
import sys

from ...planted.engines.base import Value as Base


class Value(Base):
    def log(self):
        if self.data > 1e100:
            sys.exit(0)
        return super().log()
