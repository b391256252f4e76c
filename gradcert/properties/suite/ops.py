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
    """relu at 0 and -0: value 0, derivative inside [0, 1]; report the convention."""
    check = gradcert_check
    check.require("relu")
    conventions = {}
    for x in (0.0, -0.0):
        g = op_graph("relu", (x,), None)
        run = check.call(lambda g=g: check.engine.run(g, what="relu at 0"))
        d = run.grads[0]
        conventions[repr(x)] = d
        check.record.checked()
        strict = check.config.strict  # --strict: the op table's relu'(0) = 0, no other
        hi = 0.0 if strict else 1.0
        if not (run.value == 0.0 and 0.0 <= d <= hi):
            where = ("0, the op table's (--strict refuses the [0, 1] convention)" if strict
                     else "inside the one-sided bracket [0, 1]")
            check.report(Finding(
                f"relu({x!r}) is {fmt(run.value)} with derivative {fmt(d)}; the value must be 0 "
                f"and the derivative {where}", g,
                expected=f"value 0.0, derivative in [0, {hi:g}]",
                actual={"value": fmt(run.value), "grad": fmt(d)},
                repro={"kind": "kink", "x": x, "strict": strict}))
    check.record.notes["relu'(0)"] = conventions["0.0"]
    check.record.notes["relu'(-0.0)"] = conventions["-0.0"]
