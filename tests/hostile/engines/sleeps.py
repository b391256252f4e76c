"""Sleeps for an hour in exp above 100: no CPU used, only the wall ceiling stops it."""
import time

from ...planted.engines.base import Value as Base


class Value(Base):
    def exp(self):
        if self.data > 100.0:
            time.sleep(3600)
        return super().exp()
