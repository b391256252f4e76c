"""Reads a line from stdin in exp above 100."""
from ...planted.engines.base import Value as Base


class Value(Base):
    def exp(self):
        if self.data > 100.0:
            input("continue? ")
        return super().exp()
