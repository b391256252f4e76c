"""The adapter for PyPI ``micrograd`` (Karpathy's), ``micrograd.engine.Value``.

Probed like any micrograd-style class: it has ``+ - * / **`` (``/`` as
``x * y**-1``, ``**`` of a number exponent only) and ``relu``, none of the
functions (``log``, ``exp``, ``sqrt``, ``abs``, ``max``, ...) and no
``zero_grad``. Other packages install a top-level ``micrograd`` too; whatever
``micrograd.engine.Value`` is in this environment is what gets probed.

>>> sorted(MicrogradAdapter().capabilities().unsupported)  # doctest: +NORMALIZE_WHITESPACE
['abs', 'cos', 'erf', 'exp', 'expm1', 'log', 'log1p', 'max', 'min', 'pow', 'sigmoid', 'sin',
 'sqrt', 'tanh']
"""

from __future__ import annotations

import importlib

from gradcert.adapters.base import TargetError
from gradcert.adapters.generic import GenericAdapter, check_value_class

__all__ = ["MicrogradAdapter"]
__doctest_requires__ = ("micrograd",)  # its doctests skip without it (conftest.py)


class MicrogradAdapter(GenericAdapter):
    """PyPI micrograd, through the generic adapter's probing."""

    def __init__(self) -> None:
        try:
            value = importlib.import_module("micrograd.engine").Value
        except (ImportError, AttributeError) as e:
            raise TargetError(f"micrograd: cannot import micrograd.engine.Value "
                              f"({type(e).__name__}: {e}); install it with "
                              f"'pip install micrograd'") from None
        check_value_class(value, "micrograd (micrograd.engine:Value)")
        super().__init__(value, target="micrograd",
                         import_line="from micrograd.engine import Value", name="micrograd")
