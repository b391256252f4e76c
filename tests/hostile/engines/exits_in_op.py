"""os._exit(0) in exp above 100."""
import os

from ...planted.engines.base import Value as Base


class Value(Base):
    def exp(self):
        if self.data > 100.0:
            os._exit(0)
        return super().exp()
