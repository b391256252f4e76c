"""KeyboardInterrupt in tanh above 10."""
from ...planted.engines.base import Value as Base


class Value(Base):
    def tanh(self):
        if self.data > 10.0:
            raise KeyboardInterrupt("tanh was interrupted")
        return super().tanh()
