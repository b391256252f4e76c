"""Sets the FPU to round upward at import (fesetround(FE_UPWARD)), for every float op of
the process, its own included."""
import ctypes
import ctypes.util

from ...planted.engines.base import Value  # noqa: F401  (the target)

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
_libm.fesetround(0x800)  # FE_UPWARD on x86-64
