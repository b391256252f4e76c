"""Works only in the thread that imported it (as an sqlite-backed cache does)."""
import threading

from ...planted.engines.base import Value as Base

_OWNER = threading.get_ident()


def _check():
    if threading.get_ident() != _OWNER:
        raise RuntimeError("objects created in a thread can only be used in that same thread")


class Value(Base):
    def __init__(self, *args, **kwargs):
        _check()
        super().__init__(*args, **kwargs)

    def backward(self):
        _check()
        super().backward()
