"""A non-daemon thread that never ends, started at import."""
import threading
import time

from ...planted.engines.base import Value  # noqa: F401  (the target)

threading.Thread(target=time.sleep, args=(10**6,), name="forever").start()
