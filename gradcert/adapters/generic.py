"""The generic adapter: any micrograd-style ``Value`` class.

The class is constructed from a float and has ``.data``, ``.grad``,
``.backward()``, Python operators, and whichever of ``.log()``, ``.exp()``,
``.relu()``, ``.tanh()``, ``.sigmoid()`` and ``**`` it has. The adapter
probes each op of the op table on small fresh Values at benign inputs. An op
is unsupported only when the class lacks it: no such method or operator, or
one that returns ``NotImplemented`` or raises ``NotImplementedError``. A
method that exists but raises or returns something that is not a number is
supported, with the reason in ``capabilities().notes``, so certification
shows the failure instead of hiding it.

The engine's code is untrusted: probing runs it, so it happens in the
engine host (:mod:`gradcert.adapters.host`), which the judge limits and
restarts; nothing here uses threads or timers.

>>> from gradcert.engine import Value
>>> caps = GenericAdapter(Value).capabilities()
>>> caps.unsupported, caps.dtype, caps.has_zero_grad
(frozenset(), 'float64', True)
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradcert.adapters.base import (
    Adapter,
    Capabilities,
    EngineError,
    TargetError,
    Unsupported,
    _number,
    _show,
)
from gradcert.ops import OPS, Op, dispatch

__all__ = ["PROBE_STEPS", "GenericAdapter", "check_value_class", "method_of", "probe"]

# Benign probe points: (x, y, constant), inside every op's domain, away from
# kinks; tried in turn until one works, so an engine that fails at one
# particular value is not taken for one that lacks the op.
_POINTS = ((2.0, 3.0, 2.0), (0.75, 1.5, 3.0), (1.25, 0.5, -1.0))

PROBE_STEPS: tuple[str, ...] = (*OPS, "dtype", "relu'(0)")
"""What :func:`probe` runs, in order: each op, then the dtype and relu'(0) readings."""

_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "truediv", "**": "pow"}


def method_of(op: Op) -> str | None:
    """The method or operator a Value class needs for ``op``, read off the op's template.

    >>> method_of(OPS["rsubc"]), method_of(OPS["log"]), method_of(OPS["neg"])
    ('__rsub__', 'log', '__neg__')
    >>> method_of(OPS["max"]), method_of(OPS["abs"]), method_of(OPS["pow"])
    ('max', '__abs__', '__pow__')
    """
    t = op.template
    if m := re.fullmatch(r"\{0\}\.(\w+)\((\{1\})?\)", t):
        return m.group(1)
    if t == "-{0}":
        return "__neg__"
    if m := re.fullmatch(r"(\w+)\(\{0\}\)", t):
        return f"__{m.group(1)}__"
    if (m := re.fullmatch(r"\{(0|c)\} (\S+) \{(0|1|c)\}", t)) and m.group(2) in _OPERATORS:
        name = _OPERATORS[m.group(2)]
        return f"__r{name}__" if m.group(1) == "c" else f"__{name}__"
    return None


def check_value_class(cls: Any, where: str) -> None:
    """Raise :class:`TargetError` unless ``cls`` looks like a micrograd-style Value class.

    ``where`` names the target in the message.

    >>> check_value_class(dict, "builtins:dict")
    Traceback (most recent call last):
    ...
    gradcert.adapters.base.TargetError: builtins:dict: calling dict(2.0) raised TypeError: ...
    """
    expected = ("expected an Adapter, or a Value class constructible from a float "
                "with .data, .grad and .backward()")
    if not isinstance(cls, type):
        raise TargetError(f"{where} is a {type(cls).__name__}, not an engine: {expected}")
    name = cls.__name__
    try:
        v = cls(2.0)
    except Exception as e:
        raise TargetError(f"{where}: calling {name}(2.0) raised {type(e).__name__}: {e}; "
                          f"{expected}") from None
    lacking = [a for a in ("data", "grad") if not hasattr(v, a)]
    if not callable(getattr(v, "backward", None)):
        lacking.append("backward()")
    if lacking:
        raise TargetError(f"{where}: {name}(2.0) has no {', '.join('.' + a for a in lacking)}; "
                          f"{expected}")
    try:
        float(v.data)
    except Exception:
        raise TargetError(f"{where}: {name}(2.0).data is {_show(v.data)}, not a number; "
                          f"{expected}") from None


def _float32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def probe(cls: type, *, skip: Mapping[str, str] | None = None,
          progress: Callable[[str], None] | None = None) -> Capabilities:
    """Find which ops of the op table ``cls`` supports, its dtype and zero_grad.

    An op is supported when the class has its method or operator (see
    :func:`method_of`) and does not decline it (``NotImplemented``,
    ``NotImplementedError``). Applying it to fresh ``cls`` instances should
    give an instance of ``cls`` whose ``.data`` is a number and whose
    ``backward()`` runs; one that fails at every probe point is still
    supported, with the reason in ``notes``, so certification shows the
    failure instead of hiding it.

    ``skip`` maps steps of :data:`PROBE_STEPS` not to run to why (the judge
    passes the ones that hung or crashed an earlier host); a skipped op the
    class has counts as supported. ``progress(step)`` is called before each
    step, so whoever limits this process knows where it stopped.

    >>> class V:
    ...     def __init__(self, data): self.data, self.grad = data, 0.0
    ...     def __add__(self, o): return V(self.data + (o.data if isinstance(o, V) else o))
    ...     def exp(self): raise ValueError("not today")
    ...     def backward(self): self.grad = 1.0
    >>> caps = probe(V)
    >>> sorted(caps.ops), caps.notes["log"]
    (['add', 'addc', 'exp'], "V has no attribute 'log'")
    >>> caps.notes["exp"]
    'fails at every probe point: ValueError: not today'
    """
    skip = skip or {}
    limit = sys.getrecursionlimit()
    ops, notes = set(), {}
    for name, op in OPS.items():
        method = method_of(op)
        if method is not None and not callable(getattr(cls, method, None)):
            notes[name] = f"{cls.__name__} has no attribute {method!r}"
            continue
        if name in skip:
            ops.add(name)
            notes[name] = skip[name]
            continue
        if progress is not None:
            progress(name)
        declined = _probe(cls, op, method)
        sys.setrecursionlimit(limit)  # whatever the op did to it is not the next one's
        if declined is None or not declined.startswith("lacks: "):
            ops.add(name)
        if declined is not None:
            notes[name] = declined.removeprefix("lacks: ")
    note: str | None
    if "dtype" in skip:
        dtype, note = "float64", f"not determined: {skip['dtype']}"
    else:
        if progress is not None:
            progress("dtype")
        dtype, note = _dtype(cls)
    if note:
        notes["dtype"] = note
    if "relu" in ops:
        if "relu'(0)" in skip:
            notes["relu'(0)"] = skip["relu'(0)"]
        else:
            if progress is not None:
                progress("relu'(0)")
            try:
                notes["relu'(0)"] = repr(_relu_at_zero(cls))
            except BaseException as e:  # the engine's code: anything may come out
                notes["relu'(0)"] = f"{type(e).__name__}: {e}"
    return Capabilities(frozenset(ops), dtype, callable(getattr(cls, "zero_grad", None)),
                        notes=notes)


def _probe(cls: Any, op: Op, method: str | None) -> str | None:
    """None if ``op`` works at a probe point; ``"lacks: why"`` if the class declines it;
    else why it fails at every probe point."""
    problem = ""
    for x, y, c in _POINTS:
        try:
            _probe_op(cls, op, x, y, c)
            return None
        except BaseException as e:  # the engine's code: anything may come out
            if isinstance(e, NotImplementedError):
                return f"lacks: {method or op.name} raises NotImplementedError: {e}"
            if isinstance(e, TypeError) and method and _returns_not_implemented(
                    cls, op, method, x, y, c):
                return f"lacks: {cls.__name__}.{method} returns NotImplemented for " \
                       f"{'a float' if op.has_const else 'a ' + cls.__name__}"
            if isinstance(e, (TypeError, AssertionError)) and _takes_only_numbers(op, method):
                # x ** y of two Values, where ** takes a number exponent (micrograd's
                # assert isinstance(other, (int, float)))
                return f"lacks: {cls.__name__}.{method} takes a number, not a " \
                       f"{cls.__name__} ({type(e).__name__}: {e})"
            problem = f"{type(e).__name__}: {e}"
    return f"fails at every probe point: {problem}"


def _takes_only_numbers(op: Op, method: str | None) -> bool:
    """Whether ``op`` is the node form of a method that also takes a number (``**``)."""
    forms = dict(dispatch().get(method or "", ()))
    return op.arity == 2 and forms.get("node") == op.name and "const" in forms


def _returns_not_implemented(cls: Any, op: Op, method: str, x: float, y: float,
                             c: float) -> bool:
    try:
        operands = [cls(x), cls(y)][:op.arity] + ([c] if op.has_const else [])
        return getattr(cls, method)(*operands) is NotImplemented
    except BaseException:  # the engine's code: anything may come out
        return False


def _probe_op(cls: Any, op: Any, x: float, y: float, c: float) -> None:
    operands = [cls(x), cls(y)][:op.arity]
    out = op.apply(*operands, c) if op.has_const else op.apply(*operands)
    if not isinstance(out, cls):
        raise TypeError(f"{op.name} returned {_show(out)} ({type(out).__name__}), "
                        f"not a {cls.__name__}")
    _number(out.data, "value (.data)")
    out.backward()
    for v in operands:
        if v.grad is not None:
            _number(v.grad, "gradient (.grad)")


def _dtype(cls: Any) -> tuple[str, str | None]:
    third = 1.0 / 3.0
    try:
        v = cls(third)
        datas = [v.data, (v * 1.0).data]
    except BaseException as e:  # the engine's code: anything may come out
        return "float64", f"not determined: {type(e).__name__}: {e}"
    kinds = {type(d).__name__ for d in datas}
    if "float32" in kinds or str(getattr(datas[0], "dtype", "")) == "float32":
        return "float32", f".data is {', '.join(sorted(kinds))}"
    got = [float(d) for d in datas]
    if all(g == third for g in got):
        return "float64", None
    if all(g == _float32(third) for g in got):
        return "float32", "Value(1/3).data is 1/3 rounded to float32"
    return "float32", f"Value(1/3) loses precision: .data reads {got!r}, not {third!r}"


def _relu_at_zero(cls: Any) -> float:
    x = cls(0.0)
    x.relu().backward()
    return float(x.grad)


class GenericAdapter(Adapter):
    """Adapter for a micrograd-style Value class, probed on first use."""

    def __init__(self, cls: type, target: str = "", import_line: str = "",
                 name: str | None = None, capabilities: Capabilities | None = None) -> None:
        self.cls = cls
        self.name = name or cls.__name__
        self.target = target or f"{cls.__module__}:{cls.__qualname__}"
        self.import_line = import_line or _import_line(cls.__module__, cls.__qualname__)
        self._caps = capabilities

    def capabilities(self) -> Capabilities:
        return self.probe()

    def probe(self, *, skip: Mapping[str, str] | None = None,
              progress: Callable[[str], None] | None = None) -> Capabilities:
        """The capabilities, probed (see :func:`probe`) the first time they are asked for."""
        if self._caps is None:
            self._caps = probe(self.cls, skip=skip, progress=progress)
        return self._caps

    def leaf(self, x: float) -> Any:
        return self.cls(x)

    def apply(self, op: str, operands: Sequence[Any], const: float | None) -> Any:
        row = OPS[op]
        out = row.apply(*operands, const) if row.has_const else row.apply(*operands)
        if not isinstance(out, self.cls):
            raise EngineError(None, op, None, f"{op} returned {_show(out)} "
                              f"({type(out).__name__}), not a {self.cls.__name__}")
        return out

    def backward(self, out: Any) -> None:
        out.backward()

    def value(self, handle: Any) -> float:
        return _number(handle.data, "value (.data)")

    def grad(self, leaf: Any) -> float:
        g = leaf.grad
        return 0.0 if g is None else _number(g, "gradient (.grad)")

    def zero_grad(self, leaves: Sequence[Any]) -> None:
        if not callable(getattr(self.cls, "zero_grad", None)):
            raise Unsupported(f"{self.name} has no zero_grad method")
        for v in leaves:
            v.zero_grad()


def _import_line(module: str, qualname: str) -> str:
    """``from module import attr as Value``, for a reproducer.

    >>> _import_line("mypkg.engine", "Value")
    'from mypkg.engine import Value'
    >>> _import_line("mypkg", "nn.Scalar")
    'from mypkg import nn\\nValue = nn.Scalar'
    """
    if "." in qualname:
        head = qualname.split(".")[0]
        return f"from {module} import {head}\nValue = {qualname}"
    if qualname == "Value":
        return f"from {module} import Value"
    return f"from {module} import {qualname} as Value"
