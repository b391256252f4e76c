"""gradcert's reference engine: a scalar autograd Value, Adam, and small models.

It imports nothing of gradcert, so it can be read, and copied, on its own.
"""

from gradcert.engine.value import Value

__all__ = ["Value"]
