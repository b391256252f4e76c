"""A segmentation fault in exp below -100 (reading address 0, as a broken C extension)."""
import ctypes

from ...planted.engines.base import Value as Base


class Value(Base):
    def exp(self):
        if self.data < -100.0:
            ctypes.string_at(0)
        return super().exp()
