"""SIGALRM, SIGXCPU and SIGTERM ignored at import, then a pure-Python loop in exp above 100."""
import signal

from ...planted.engines.base import Value as Base

for _s in (signal.SIGALRM, signal.SIGXCPU, signal.SIGTERM):
    signal.signal(_s, signal.SIG_IGN)


class Value(Base):
    def exp(self):
        while self.data > 100.0:
            pass
        return super().exp()
