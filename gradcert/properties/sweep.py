"""The deterministic edge sweep, and which ops an engine gets right.

Random examples find an edge bug on some seeds only. Before any random
example, ``ops.values`` and ``ops.gradients`` run every op on every case of
:func:`~gradcert.properties.strategies.edge_cases` (each edge, each constant,
both operand orders), so the same engine gets the same finding on every seed.
Every case is run; the first failing case (in the sweep's fixed order) is the
finding, the one furthest past its bound is reported beside it as the worst.

:func:`screen` runs the same sweep, values and gradients, for every op the
engine has, and says which ops it gets wrong: the other levels draw their
graphs from the rest (:meth:`~gradcert.properties.runner.Check.sound_ops`), so
a wrong tanh fails ``ops.*`` and does not reappear as a fan-out or MLP bug.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gradcert.properties import strategies as gs
from gradcert.properties.engine import op_graph
from gradcert.properties.runner import EngineCrashed, EngineRaised, EngineTimeout, Finding, finite

__all__ = ["DomainSilent", "blame", "defects", "run_sweep", "screen"]


class DomainSilent(Finding):
    """An op outside its real domain gave a number (or complex data), not an error or nan."""


def _domain_case(check: Any, op: str, xs: tuple[float, ...], c: float | None) -> None:
    """Outside the real domain (``(-1.0) ** 0.5``): raising or nan is right; a finite
    number or complex data is a finding."""
    from gradcert.properties.assertions import fmt

    g = op_graph(op, xs, c)
    shown = f"{OP_SHOWN.get(op, op)}".format(*map(fmt, xs), c=fmt(c))
    try:
        v = check.engine.forward(g, what=f"{shown}, outside the real domain")
    except EngineRaised as e:
        message = str(getattr(e.error, "message", e.error))
        if "not a number" not in message:
            return  # a clear error
        got = message
    else:
        if not finite(v):
            return
        got = fmt(v)
    f = DomainSilent(f"{shown} has no real value, but the engine gives {got} instead of "
                     f"raising or giving nan", g, expected="an exception or nan",
                     actual=got, repro={"kind": "domain", "cases": [[shown, op, list(xs), c]]})
    f.klass = "wrong value"
    raise f


OP_SHOWN = {"powc": "{0} ** {c}"}


def run_sweep(check: Any, op: str, what: str) -> None:
    """Run ``op`` on every edge case (``what``: "value" or "grad"), then report the first
    finding, with the worst beside it; nothing when every case is right."""
    from gradcert.properties.assertions import check_graph

    found: list[Finding] = []

    def sweep() -> None:
        for xs, c in gs.edge_cases(op):
            check.engine.new_example()
            try:
                if not gs.in_domain(op, xs, c):
                    if what == "value":
                        _domain_case(check, op, xs, c)
                    continue
                check_graph(check, op_graph(op, xs, c), op=op, what=what, reject=False)
            except Finding as f:
                found.append(f)
                check.note(f)

    check.guard(sweep)
    check.record.notes["sweep_cases"] = len(gs.edge_cases(op))
    if found:
        check.report(found[0])


def screen(engine: Any, ops: Any, dtype: str, seed: int = 0,
           progress: Callable[[str], None] | None = None, *, strict: bool = False,
           normal: bool = False) -> dict[str, dict[str, str]]:
    """The ops of ``ops`` the engine gets wrong on the sweep (value or gradient, inside
    the domain): for each, the property that shows it and the first wrong case in words.
    An op the engine hangs or crashes on is wrong too. Under the declared conventions
    (gradcert.properties.conventions): a subnormal result may flush to 0 unless
    ``strict``; with ``normal`` (``--range normal``) edges outside it are skipped."""
    from gradcert.oracle import exact_graph
    from gradcert.oracle.tolerance import Refused, tolerance
    from gradcert.properties.assertions import as_float32, fmt
    from gradcert.properties.conventions import flushed
    from gradcert.properties.runner import extreme

    bad: dict[str, dict[str, str]] = {}
    for op in sorted(ops):
        if progress is not None:
            progress(op)
        for xs, c in gs.edge_cases(op):
            if not gs.in_domain(op, xs, c) or (op == "relu" and xs[0] == 0):
                continue
            g = op_graph(op, xs, c)
            if dtype == "float32":
                narrowed = as_float32(g)
                if narrowed is None:
                    continue
                g = narrowed
            try:
                ex = exact_graph(g)
                if ex.overflow or (normal and extreme(g, ex.values_f64)):
                    continue
            except (ArithmeticError, ValueError):
                continue
            tol = tolerance(g, ex, dtype=dtype, seed=seed)
            at = f"{op} at {', '.join(fmt(x) for x in g.inputs)}" + (
                f" (constant {fmt(c)})" if c is not None else "")
            engine.new_example()
            try:
                run = engine.run(g, what=f"the op screen: {op}")
            except (EngineTimeout, EngineCrashed) as e:
                bad[op] = {"property": "ops.values", "text": f"{at}: {e}"[:200]}
                break
            except EngineRaised as e:
                try:
                    engine.forward(g, what=f"the op screen: {op}")
                    prop = "ops.gradients"
                except (EngineRaised, EngineTimeout, EngineCrashed):
                    prop = "ops.values"
                said = str(getattr(e.error, "message", e)).removeprefix("the engine ")
                bad[op] = {"property": prop, "text": f"{at}: {said[:120]}"}
                break
            try:
                v = tol.check(_f(run.value), [_f(x) for x in run.grads], ex)
            except Refused:
                continue  # no bound here: this edge cannot show the op wrong
            if not strict:
                v = [w for w in v if not flushed(w.expected, w.actual, dtype)]
            if v:
                w = v[0]
                bad[op] = {"property": "ops.values" if w.what == "value" else "ops.gradients",
                           "text": f"{at}: {'value' if w.what == 'value' else 'derivative'} "
                                   f"{fmt(w.actual)}, exact {fmt(w.expected)}"}
                break
    return bad


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def defects(check: Any) -> dict[str, dict[str, str]]:
    """:func:`screen` of the engine's ops, computed once per session: kept on the engine,
    and in ``<out>/op_screen.json`` for the other workers of a certification."""
    import json
    import os

    engine = check.engine
    cached = getattr(engine, "op_defects", None)
    if cached is not None:
        return dict(cached)
    path = check.config.out / "op_screen.json" if check.config.out is not None else None
    key = {"target": engine.target, "dtype": check.caps.dtype, "ops": sorted(check.caps.ops),
           "strict": check.config.strict, "range": check.config.range}
    found = None
    if path is not None:
        try:
            d = json.loads(path.read_text())
            if d.get("key") == key:
                found = dict(d["defects"])
        except (OSError, ValueError, KeyError, TypeError):
            found = None
    if found is None:
        found = screen(engine, check.caps.ops, check.caps.dtype, strict=check.config.strict,
                       normal=check.config.range == "normal")
        if path is not None:
            tmp = path.with_name(f".{path.name}-{os.getpid()}")
            tmp.write_text(json.dumps({"key": key, "defects": found}, indent=1))
            tmp.replace(path)
    engine.op_defects = found
    return dict(found)


def blame(check: Any, graph: Any) -> dict[str, str] | None:
    """The root cause of a finding on ``graph`` when one of its ops is wrong on its own:
    each op node is run alone at its float64 inputs, in graph order; the first the engine
    gets wrong (or raises on) is named, with the ops property that shows it. None when
    every op is right alone (the finding is the property's own)."""
    from gradcert.graph import evaluate
    from gradcert.oracle import exact_graph
    from gradcert.oracle.tolerance import Refused, tolerance
    from gradcert.properties.assertions import fmt
    from gradcert.properties.conventions import flushed

    try:
        vals = evaluate(graph)
    except (ArithmeticError, ValueError):
        return None
    seen: set[tuple[Any, ...]] = set()
    for n in graph.nodes:
        if n.op == "leaf":
            continue
        xs = tuple(float(vals[a]) for a in n.args)
        key = (n.op, xs, n.const)
        if key in seen or not gs.in_domain(n.op, xs, n.const) or (n.op == "relu" and xs[0] == 0):
            continue
        seen.add(key)
        g = op_graph(n.op, xs, n.const)
        try:
            ex = exact_graph(g)
            if ex.overflow:
                continue
            tol = tolerance(g, ex, dtype=check.caps.dtype, seed=0)
        except (ArithmeticError, ValueError):
            continue
        at = f"{n.op}({', '.join(fmt(x) for x in xs)}" + (
            f", constant {fmt(n.const)})" if n.const is not None else ")")
        check.engine.new_example()
        try:
            run = check.engine.run(g, what=f"{at} alone")
        except EngineRaised as e:
            said = str(getattr(e.error, "message", e)).removeprefix("the engine ")
            return _cause(n.op, "ops.values", f"{at} alone: the engine {said[:160]}")
        except (EngineTimeout, EngineCrashed):
            return None
        try:
            v = tol.check(_f(run.value), [_f(x) for x in run.grads], ex)
        except Refused:
            continue
        if not check.config.strict:
            v = [w for w in v if not flushed(w.expected, w.actual, check.caps.dtype)]
        if v:
            w = v[0]
            prop = "ops.values" if w.what == "value" else "ops.gradients"
            what = "is" if w.what == "value" else "has derivative"
            return _cause(n.op, prop, f"{at} alone {what} {fmt(w.actual)}, exact "
                                      f"{fmt(w.expected)}")
    return None


def _cause(op: str, prop: str, text: str) -> dict[str, str]:
    return {"op": op, "property": prop, "text": text}
