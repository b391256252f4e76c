"""SIGTERM to itself in relu at exactly 0."""
import os
import signal

from ...planted.engines.base import Value as Base


class Value(Base):
    def relu(self):
        if self.data == 0.0:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().relu()
