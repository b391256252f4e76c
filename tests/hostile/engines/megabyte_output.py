"""Prints 1 MiB on every log."""
import sys

from ...planted.engines.base import Value as Base

_MIB = "x" * (1 << 20)


class Value(Base):
    def log(self):
        sys.stdout.write(_MIB + "\n")
        return super().log()
