"""Tracing a function of scalars written with a micrograd-style ``Value``'s operators.

``f`` takes one argument per input and returns a Value, or a list of them;
it may use ``+ - * /`` (with numbers on either side), ``**`` with a constant
exponent, unary ``-`` and ``.log() .exp() .relu() .tanh() .sigmoid()``. The
forward is traced with stand-in scalars that record those operations (a
``relu`` is a branch fixed at the traced value); the function's own
backward is the Value class's: fresh Values, ``backward()`` on ``sum(ct *
out)``, their ``.grad``. The class is the inputs' own, or gradcert's
reference engine's when the inputs are plain floats.

>>> from gradcert.check.judge import judge
>>> t = trace_values(lambda x, y: (x * y).log() + 2.0 / x, [3.0, 4.0])
>>> judge(t, "f").passed
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from gradcert.check.builder import Builder, Ref
from gradcert.check.judge import Traced
from gradcert.check.result import CheckError, OutsideDomain
from gradcert.check.tensor import T

__all__ = ["is_value", "trace_values"]


def is_value(x: Any) -> bool:
    """A micrograd-style Value: has ``.data``, ``.grad`` and ``.backward``."""
    return hasattr(x, "data") and hasattr(x, "grad") and callable(getattr(x, "backward", None))


class _Sym:
    """A traced scalar: its ref in the builder and its float64 value."""

    __slots__ = ("b", "r", "v")

    def __init__(self, b: Builder, r: Ref, v: float) -> None:
        self.b, self.r, self.v = b, r, v

    def _other(self, o: Any) -> tuple[Ref, float] | None:
        if isinstance(o, _Sym):
            return o.r, o.v
        if isinstance(o, (int, float)) and not isinstance(o, bool):
            return float(o), float(o)
        return None

    def _bin(self, o: Any, name: str, reflected: bool) -> Any:
        got = self._other(o)
        if got is None:
            return NotImplemented
        (a, av), (c, cv) = (got, (self.r, self.v)) if reflected else ((self.r, self.v), got)
        b = self.b
        fn = {"add": (b.add, lambda: av + cv), "sub": (b.sub, lambda: av - cv),
              "mul": (b.mul, lambda: av * cv), "div": (b.div, lambda: av / cv)}[name]
        try:
            v = fn[1]()
        except ZeroDivisionError:
            v = math.nan
        return _Sym(b, fn[0](a, c), v)

    def __add__(self, o: Any) -> Any: return self._bin(o, "add", False)
    def __radd__(self, o: Any) -> Any: return self._bin(o, "add", True)
    def __sub__(self, o: Any) -> Any: return self._bin(o, "sub", False)
    def __rsub__(self, o: Any) -> Any: return self._bin(o, "sub", True)
    def __mul__(self, o: Any) -> Any: return self._bin(o, "mul", False)
    def __rmul__(self, o: Any) -> Any: return self._bin(o, "mul", True)
    def __truediv__(self, o: Any) -> Any: return self._bin(o, "div", False)
    def __rtruediv__(self, o: Any) -> Any: return self._bin(o, "div", True)

    def __neg__(self) -> _Sym:
        return _Sym(self.b, self.b.neg(self.r), -self.v)

    def __pow__(self, c: Any) -> _Sym:
        if isinstance(c, _Sym) or not isinstance(c, (int, float)):
            raise CheckError("only constant exponents are traced (x ** 2.0, not x ** y)")
        try:
            v = self.v ** float(c)
        except (ZeroDivisionError, OverflowError):
            v = math.nan
        return _Sym(self.b, self.b.powc(self.r, float(c)), v if isinstance(v, float) else math.nan)

    def _unary(self, name: str, f: Callable[[float], float]) -> _Sym:
        try:
            v = f(self.v)
        except (ValueError, OverflowError):
            v = math.nan
        return _Sym(self.b, getattr(self.b, name)(self.r), v)

    def log(self) -> _Sym: return self._unary("log", math.log)
    def exp(self) -> _Sym: return self._unary("exp", math.exp)
    def tanh(self) -> _Sym: return self._unary("tanh", math.tanh)

    def sigmoid(self) -> _Sym:
        return self._unary("sigmoid", lambda x: 1 / (1 + math.exp(-x)) if x >= 0
                           else math.exp(x) / (1 + math.exp(x)))

    def relu(self) -> _Sym:
        taken = self.b.split(self.r, 0.0, self.v > 0, "relu", self.v == 0)
        return _Sym(self.b, self.r if taken else 0.0, self.v if taken else 0.0)


def _outputs(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def trace_values(f: Callable[..., Any], inputs: Sequence[Any],
                 engine: type | None = None) -> Traced:
    """Trace ``f`` at ``inputs`` (floats or Values) and pair it with the Value class's
    own backward (``engine``, else the inputs' class, else gradcert's engine)."""
    xs = []
    for k, x in enumerate(inputs):
        v = x.data if is_value(x) else x
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise CheckError(f"input {k} must be a finite number or a Value, got {x!r}")
        xs.append(float(v))
    if engine is None:
        engine = next((type(x) for x in inputs if is_value(x)), None)
    if engine is None:
        from gradcert.engine import Value  # the reference engine, for plain floats

        engine = Value
    b = Builder()
    syms = [_Sym(b, b.input(x), x) for x in xs]
    got = f(*syms)
    single = not isinstance(got, (list, tuple))
    outs = _outputs(got)
    refs: list[Ref] = []
    for k, o in enumerate(outs):
        if isinstance(o, _Sym):
            refs.append(o.r)
        elif isinstance(o, (int, float)) or is_value(o):
            refs.append(float(o.data if is_value(o) else o))  # a constant
        else:
            raise CheckError(f"output {k} is a {type(o).__name__}, not a value computed "
                             f"from the inputs")
    value_cls = engine

    def data(os: list[Any]) -> list[float]:
        return [float(o.data) if is_value(o) else float(o) for o in os]

    def vjp(cts: list[list[float]]) -> list[list[float]]:
        try:
            return _vjp(cts)
        except (ArithmeticError, ValueError) as e:
            raise OutsideDomain(f"the backward raised {type(e).__name__} at these inputs: "
                             f"{e}") from e

    def _vjp(cts: list[list[float]]) -> list[list[float]]:
        leaves = [value_cls(x) for x in xs]
        loss = None
        for c, o in zip(cts[0], _outputs(f(*leaves)), strict=True):
            if c == 0.0 or not is_value(o):
                continue
            term = o if c == 1.0 else o * c
            loss = term if loss is None else loss + term
        if loss is not None:
            loss.backward()
        return [[float(v.grad or 0.0)] for v in leaves]

    def evaluate(ys: list[float]) -> list[float]:
        return data(_outputs(f(*[value_cls(y) for y in ys])))

    try:
        vals = evaluate(xs)
    except (ArithmeticError, ValueError) as e:
        raise OutsideDomain(f"the function raised {type(e).__name__} at these inputs: {e}") from e
    out = T(() if single else (len(refs),), refs, vals)
    name = f"{getattr(value_cls, '__module__', '?')}.{value_cls.__name__}"
    return Traced(b, [out], [()] * len(xs), list(range(len(xs))), "float64", vjp, name,
                  evaluate=evaluate, x0=xs)
