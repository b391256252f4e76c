"""The generic adapter: any micrograd-style ``Value`` class.

The class is constructed from a float and has ``.data``, ``.grad``,
``.backward()``, Python operators, and whichever of ``.log()``, ``.exp()``,
``.relu()``, ``.tanh()``, ``.sigmoid()`` and ``**`` it has. The adapter
probes each op of the op table on small fresh Values at benign inputs and
certifies what works; what does not is unsupported, with the reason in
``capabilities().notes``. The engine's code is untrusted: every probe runs in
a daemon thread with a time limit, so one that hangs does not hang gradcert.

>>> from gradcert.engine import Value
>>> caps = GenericAdapter(Value).capabilities()
>>> caps.unsupported, caps.dtype, caps.has_zero_grad
(frozenset(), 'float64', True)
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from functools import partial
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
from gradcert.ops import OPS

__all__ = ["GenericAdapter", "check_value_class", "probe"]

PROBE_TIMEOUT = 5.0
"""Seconds one probe of an untrusted engine may take before it counts as hung."""

# Exceptions that mean "the class does not have this op" rather than "the op
# failed at this input".
_LACKS = (AttributeError, TypeError, NotImplementedError, AssertionError)

# Benign probe points: (x, y, constant), inside every op's domain, away from
# kinks; tried in turn until one works, so an engine that fails at one
# particular value is not taken for one that lacks the op.
_POINTS = ((2.0, 3.0, 2.0), (0.75, 1.5, 3.0), (1.25, 0.5, -1.0))


def _in_thread(f: Callable[[], Any], timeout: float) -> Any:
    """``f()`` in a daemon thread; its exception re-raised; TimeoutError if it hangs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = f()
        except BaseException as e:  # the engine's code: anything may come out
            box["error"] = e

    t = threading.Thread(target=target, name="gradcert-probe", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"did not finish within {timeout:g} s")
    if "error" in box:
        e = box["error"]
        if not isinstance(e, Exception):  # SystemExit, KeyboardInterrupt from the engine
            raise RuntimeError(f"raised {type(e).__name__}: {e}") from e
        raise e
    return box.get("result")


def check_value_class(cls: Any, where: str, timeout: float = PROBE_TIMEOUT) -> None:
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
        v = _in_thread(lambda: cls(2.0), timeout)
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


def probe(cls: type, timeout: float = PROBE_TIMEOUT) -> Capabilities:
    """Find which ops of the op table ``cls`` supports, its dtype and zero_grad.

    An op is supported when applying it to fresh ``cls`` instances gives an
    instance of ``cls`` whose ``.data`` is a number and whose ``backward()``
    runs. AttributeError, TypeError, NotImplementedError or AssertionError
    mean the op is missing; any other failure at every probe point is
    recorded in ``notes`` but the op counts as supported, so certification
    shows the failure instead of hiding it.

    >>> class V:
    ...     def __init__(self, data): self.data, self.grad = data, 0.0
    ...     def __add__(self, o): return V(self.data + (o.data if isinstance(o, V) else o))
    ...     def backward(self): self.grad = 1.0
    >>> caps = probe(V)
    >>> sorted(caps.ops), caps.notes["log"]
    (['add', 'addc'], "AttributeError: 'V' object has no attribute 'log'")
    """
    ops, notes = set(), {}
    for name, op in OPS.items():
        status, problem = "fails", ""
        for x, y, c in _POINTS:
            try:
                _in_thread(partial(_probe_op, cls, op, x, y, c), timeout)
            except TimeoutError as e:
                status, problem = "hangs", f"probe {e}"
                break
            except _LACKS as e:
                status, problem = "lacks", f"{type(e).__name__}: {e}"
                break
            except Exception as e:
                problem = f"{type(e).__name__}: {e}"
                continue
            status = "ok"
            break
        if status in ("ok", "fails"):
            ops.add(name)
        if status == "fails":
            notes[name] = f"fails at every probe point: {problem}"
        elif status != "ok":
            notes[name] = problem
    dtype, note = _dtype(cls, timeout)
    if note:
        notes["dtype"] = note
    if "relu" in ops:
        try:
            notes["relu'(0)"] = repr(_in_thread(lambda: _relu_at_zero(cls), timeout))
        except Exception as e:
            notes["relu'(0)"] = f"{type(e).__name__}: {e}"
    return Capabilities(frozenset(ops), dtype, callable(getattr(cls, "zero_grad", None)),
                        notes=notes)


def _probe_op(cls: Any, op: Any, x: float, y: float, c: float) -> None:
    operands = [cls(x), cls(y)][:op.arity]
    out = op.apply(*operands, c) if op.has_const else op.apply(*operands)
    if not isinstance(out, cls):
        raise TypeError(f"{op.name} returned {type(out).__name__}, not {cls.__name__}")
    float(out.data)
    out.backward()
    for v in operands:
        if v.grad is not None:
            float(v.grad)


def _dtype(cls: Any, timeout: float) -> tuple[str, str | None]:
    third = 1.0 / 3.0

    def read() -> list[Any]:
        v = cls(third)
        return [v.data, (v * 1.0).data]

    try:
        datas = _in_thread(read, timeout)
    except Exception as e:
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
        if self._caps is None:
            self._caps = probe(self.cls)
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
