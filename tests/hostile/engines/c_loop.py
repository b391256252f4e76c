"""A loop in C (holding the GIL: no signal handler runs) in log above 1e200."""
from ...planted.engines.base import Value as Base


class Value(Base):
    def log(self):
        if self.data > 1e200:
            sum(range(10**12))
        return super().log()
