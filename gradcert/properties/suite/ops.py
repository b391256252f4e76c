"""Level ``ops``: each op alone, at edge-heavy inputs, against the oracle."""

from __future__ import annotations

from typing import Any

import pytest

from gradcert.ops import OPS
from gradcert.properties import strategies as gs
from gradcert.properties.assertions import check_graph, fmt
from gradcert.properties.engine import op_graph
from gradcert.properties.runner import Finding
from gradcert.properties.sweep import run_sweep

OP_NAMES = list(OPS)


def _ops_property(check: Any, op: str, what: str) -> None:
    check.require(op)
    run_sweep(check, op, what)  # every edge, the same on every seed; then random examples
    check.examples(gs.op_inputs(op),
                   lambda t: check_graph(check, op_graph(op, *t), op=op, what=what),
                   examples=check.profile.op_examples)


@pytest.mark.parametrize("op", OP_NAMES)
def test_values(gradcert_check: Any, op: str) -> None:
    _ops_property(gradcert_check, op, "value")


@pytest.mark.parametrize("op", OP_NAMES)
def test_gradients(gradcert_check: Any, op: str) -> None:
    _ops_property(gradcert_check, op, "grad")


def test_kinks(gradcert_check: Any) -> None:
    """relu at 0 and -0: value 0, derivative inside [0, 1]; abs at 0: value 0, derivative
    inside [-1, 1]; max and min of two equal values: that value, and shares of the
    gradient inside [0, 1] that sum to 1. Each a convention (docs/conventions.md):
    report the engine's; --strict holds it to the op table's (0, 0, and an even split)."""
    check = gradcert_check
    have = check.require("relu", "abs", "max", "min", any_of=True)
    strict = check.config.strict
    cases: list[tuple[str, tuple[float, ...]]] = [
        ("relu", (x,)) for x in (0.0, -0.0) if "relu" in have]
    cases += [("abs", (0.0,))] if "abs" in have else []
    cases += [(op, (1.5, 1.5)) for op in ("max", "min") if op in have]
    for op, xs in cases:
        g = op_graph(op, xs, None)
        run = check.call(lambda g=g, op=op: check.engine.run(g, what=f"{op} at its kink"))
        ds = [float(d) for d in run.grads]
        shown = f"{op}({', '.join(map(repr, xs))})"
        check.record.checked()
        check.record.notes[f"{op}'({', '.join(map(repr, xs))})"] = \
            ds[0] if len(ds) == 1 else ds
        value = xs[0] if op in ("max", "min") else 0.0
        if op == "relu":
            ok, want = 0.0 <= ds[0] <= (0.0 if strict else 1.0), \
                "0 (--strict)" if strict else "inside the one-sided bracket [0, 1]"
        elif op == "abs":
            ok, want = -1.0 <= ds[0] <= 1.0 and (ds[0] == 0.0 or not strict), \
                "0 (--strict)" if strict else "inside [-1, 1]"
        else:
            ok = all(0.0 <= d <= 1.0 for d in ds) and ds[0] + ds[1] == 1.0 and (
                not strict or ds == [0.5, 0.5])
            want = "0.5 each (--strict)" if strict else "shares inside [0, 1] that sum to 1"
        if not (run.value == value and ok):
            check.report(Finding(
                f"{shown} is {fmt(run.value)} with derivative {', '.join(map(fmt, ds))}; the "
                f"value must be {value!r} and the derivative {want}", g,
                expected=f"value {value!r}, derivative {want}",
                actual={"value": fmt(run.value), "grad": ", ".join(map(fmt, ds))},
                repro={"kind": "kink", "x": xs[0], "strict": strict} if op == "relu" else None))
    if "relu" in have:
        check.record.notes["relu'(0)"] = check.record.notes.pop("relu'(0.0)")
        check.record.notes["relu'(-0.0)"] = check.record.notes.pop("relu'(-0.0)")
