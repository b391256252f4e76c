"""``check_grads``: one call that judges a function's own gradients exactly.

See :func:`check_grads`. The tracers live in ``torch_trace``, ``jax_trace``
and ``values``; the comparison in ``judge``; the input search and the
reproducer in ``search``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gradcert.check.judge import FULL, PROJECTIONS, Traced, judge, judge_fd
from gradcert.check.result import (
    CheckError,
    CheckResult,
    GradientMismatch,
    NotYetSupported,
    OutsideDomain,
    Untraceable,
)

__all__ = ["EXAMPLES", "check_grads", "check_once", "framework_of", "function_name"]

EXAMPLES = 16
"""Inputs the search draws by default, beyond the given ones."""

REPRODUCERS = Path("gradcert-report") / "reproducers"
"""Where a failure's reproducer is written by default (as ``gradcert certify``'s)."""


def framework_of(args: Sequence[Any]) -> str:
    """``torch``, ``jax`` or ``values`` (floats and micrograd-style Values), by the
    types of the arguments (a numpy array is taken for JAX, which accepts it).

    >>> framework_of([1.0, 2.0])
    'values'
    """
    found = "values"
    for a in args:
        mod = type(a).__module__ or ""
        if mod.startswith("torch"):
            return "torch"
        if mod.startswith(("jax", "jaxlib")) or (mod == "numpy" and hasattr(a, "dtype")
                                                 and hasattr(a, "shape")):
            found = "jax"
    return found


def locate(f: Any) -> tuple[str, str] | None:
    """``(module, attribute path)`` by which ``f`` itself can be imported, or None.

    A ``Function.apply`` is found through its class; a wrapper that copies its
    wrapped function's name (``jax.custom_vjp``, ``functools.wraps``) by
    looking for the object itself in its module.
    """
    owner = getattr(f, "__self__", None)
    if isinstance(owner, type):
        module, path = owner.__module__, f"{owner.__qualname__}.{f.__name__}"
    else:
        module = getattr(f, "__module__", None) or ""
        path = getattr(f, "__qualname__", None) or ""
    mod = sys.modules.get(module)
    if mod is None:
        return None
    if path and "<" not in path:
        obj: Any = mod
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is f or (obj is not None and obj == f):
            return module, path
    for name, value in vars(mod).items():
        if value is f:
            return module, name
    return None


def function_name(f: Any) -> str:
    """``module:qualname`` of ``f``, as it can be imported where it can."""
    where = locate(f)
    if where is not None:
        return f"{where[0]}:{where[1]}"
    mod = getattr(f, "__module__", None) or "?"
    return f"{mod}:{getattr(f, '__qualname__', type(f).__name__)}"


def _as_args(inputs: Any) -> list[Any]:
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    return [inputs]


def trace(f: Callable[..., Any], args: Sequence[Any], framework: str,
          engine: type | None = None, symbolic: bool = True) -> Traced:
    """Trace ``f`` at ``args`` with the framework's tracer (without a graph when
    ``symbolic`` is False: the finite-difference fallback needs only the backward)."""
    if framework == "torch":
        from gradcert.check import torch_trace

        return torch_trace.trace(f, args, symbolic=symbolic)
    if framework == "jax":
        from gradcert.check import jax_trace

        return jax_trace.trace(f, args, symbolic=symbolic)
    from gradcert.check.values import trace_values

    return trace_values(f, args, engine)


def check_once(f: Callable[..., Any], args: Sequence[Any], *, name: str, framework: str,
               value: bool = True, fallback: bool = False, full: int = FULL,
               projections: int = PROJECTIONS, engine: type | None = None,
               kinks: bool = True) -> CheckResult:
    """The check at one point, without search, reproducer or raising on failure
    (``kinks=False``: CheckError at a point on a kink, which the search skips)."""
    try:
        traced = trace(f, args, framework, engine)
    except Untraceable as e:
        if not fallback:
            raise Untraceable(e.op, e.reason + " (check_grads(..., fallback=True) compares "
                                               "with finite differences instead, "
                                               "approximately)", e.row) from None
        traced = trace(f, args, framework, engine, symbolic=False)
        return replace(judge_fd(traced, name, f"{e}"), inputs=list(args))
    result = judge(traced, name, value=value, full=full, projections=projections,
                   kinks=kinks)
    return replace(result, inputs=list(args))


def check_grads(f: Callable[..., Any], inputs: Any, *, examples: int | None = None,
                value: bool = True, order: int = 1, fallback: bool = False,
                full: int = FULL, projections: int = PROJECTIONS,
                reproducer_dir: str | Path | None = REPRODUCERS,
                raise_on_failure: bool = True, engine: type | None = None,
                name: str | None = None) -> CheckResult:
    """Judge ``f``'s own gradients (and value) against gradcert's exact oracle.

    ``f`` takes and returns PyTorch tensors, JAX arrays, or floats/Values of
    a micrograd-style engine (gradcert's own by default). ``inputs`` is the
    sequence of ``f``'s positional arguments (a single tensor, array or
    float is one argument), or a hypothesis strategy drawing such sequences.

    How: ``f``'s forward is traced at the inputs into gradcert's graph, every
    tensor element a node (PyTorch at the ATen level, JAX from its jaxpr, a
    ``custom_vjp``/``custom_jvp`` by its primal), branches fixed where ``f``
    took them. The oracle gives the exact value and vector-Jacobian products
    (every output element's when there are at most ``full`` (8), else
    ``projections`` (2) fixed random cotangents of all of them), and the
    tolerance model their bounds; ``f``'s own backward
    (``torch.autograd.grad``, ``jax.vjp``, ``Value.backward``) is compared,
    and so is its forward value unless ``value=False``. Differentiated
    inputs: the floating tensors with ``requires_grad`` if any has it, else
    every floating tensor (and every float).

    Search: besides the given inputs, hypothesis draws ``examples`` (16)
    more of the same shapes around them, including values that break real
    code (tens and hundreds, tiny, zero, negative), or from the strategy;
    a failure is shrunk to the simplest input and a standalone reproducer
    written to ``reproducer_dir`` (None: none). ``examples=0`` checks only
    the given inputs; inside a hypothesis test there is no inner search.

    Tolerances: none to pick; the bound is derived from the traced graph
    (docs/tolerance.md). Cost: one forward of ``f`` under the tracer and one
    backward per cotangent, plus the oracle and the tolerance model (its
    Monte Carlo runs only for a result outside its first-order bound), about
    linear in the number of traced scalars: 16-27 us per scalar, 140-280 us
    per parameter of an MLP or attention loss at batch 4 from a few hundred
    parameters on, on a busy shared machine (bench/bench_check.py), and about
    50 times that with the default search.

    Returns a :class:`~gradcert.check.result.CheckResult`; raises
    :class:`~gradcert.check.result.GradientMismatch` (an AssertionError) on
    failure unless ``raise_on_failure=False``,
    :class:`~gradcert.check.result.Untraceable` naming an op it cannot trace
    (``fallback=True`` compares with Richardson finite differences instead
    and says the check is approximate), and ``NotYetSupported`` for
    ``order=2``.

    >>> from gradcert.check import check_grads
    >>> r = check_grads(lambda x: (x * x).exp(), [0.5], examples=0)
    >>> r.passed, r.checked
    (True, 2)
    """
    if order == 2:
        raise NotYetSupported("order=2 is not built yet: gradcert judges first derivatives "
                              "(vector-Jacobian products) exactly; second-order checks are "
                              "planned")
    if order != 1:
        raise CheckError(f"order must be 1 (or 2, not yet built), got {order!r}")
    if not callable(f):
        raise CheckError(f"f must be callable, got {type(f).__name__}")
    if examples is not None and (not isinstance(examples, int) or examples < 0):
        raise CheckError(f"examples must be a non-negative integer, got {examples!r}")
    label = name or function_name(f)
    opts: dict[str, Any] = {"value": value, "fallback": fallback, "full": full,
                            "projections": projections, "engine": engine}
    from gradcert.check import search

    strategy = inputs if search.is_strategy(inputs) else None
    n = EXAMPLES if examples is None else examples
    if strategy is None:
        args = _as_args(inputs)
        framework = framework_of(args)
        if search.inside_hypothesis():  # hypothesis searches: skip what we would skip
            try:
                result = check_once(f, args, name=label, framework=framework, kinks=False,
                                    **opts)
            except OutsideDomain:
                search.reject()
                raise
        else:
            result = check_once(f, args, name=label, framework=framework, **opts)
            if result.passed and n:
                result = search.search(f, args, n, label, opts, result)
    else:
        if search.inside_hypothesis():
            raise CheckError("a strategy cannot be searched inside a hypothesis test: "
                             "draw the inputs with @given and pass them to check_grads")
        result = search.search_strategy(f, strategy, n or EXAMPLES, label, opts)
    if not result.passed and reproducer_dir is not None and result.inputs is not None:
        result = search.with_reproducer(result, f, Path(reproducer_dir), opts)
    if not result.passed and raise_on_failure:
        raise GradientMismatch(result)
    return result
