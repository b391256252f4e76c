"""tanh's result holds None as its value."""
from ...planted.engines.base import Value as Base


class Value(Base):
    def tanh(self):
        out = super().tanh()
        out.data = None
        return out
