"""The constructor loops (in C) for values above 1e200."""
from ...planted.engines.base import Value as Base


class Value(Base):
    def __init__(self, data, *args, **kwargs):
        if isinstance(data, float) and data > 1e200:
            sum(range(10**12))
        super().__init__(data, *args, **kwargs)
