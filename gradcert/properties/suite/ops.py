"""Level ``ops``: each op alone, at edge-heavy inputs, against the oracle."""

from __future__ import annotations

from typing import Any

import pytest

from gradcert.graph import Graph, Node
from gradcert.ops import OPS
from gradcert.properties import strategies as st
from gradcert.properties.assertions import check_graph, fmt
from gradcert.properties.runner import Finding

OP_NAMES = list(OPS)


def op_graph(op: str, operands: tuple[float, ...], const: float | None) -> Graph:
    """One application of ``op`` to fresh leaves holding ``operands``."""
    nodes = [Node.leaf(x) for x in operands]
    nodes.append(Node(op, tuple(range(len(operands))), const))
    return Graph(tuple(nodes))


def _ops_property(check: Any, op: str, what: str) -> None:
    check.require(op)
    check.examples(st.op_inputs(op),
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
    from gradcert.adapters.base import run_graph

    check = gradcert_check
    check.require("relu")
    conventions = {}
    for x in (0.0, -0.0):
        g = op_graph("relu", (x,), None)
        run = check.call(lambda g=g: run_graph(check.adapter, g), g, "relu at 0")
        d = float(run.grads[0])
        conventions[repr(x)] = d
        check.record.checked()
        if not (float(run.value) == 0.0 and 0.0 <= d <= 1.0):
            body = ("def main():\n"
                    f"    x = {check.adapter.make_value}({x!r})\n"
                    "    out = x.relu()\n    backward(out)\n"
                    "    rows = [('value', 0.0, value(out), 0.0)]\n"
                    "    d = grad(x)\n"
                    "    print(f\"relu'({x}) = {d!r}; it must lie in [0, 1]\")\n"
                    "    return 1 if table(rows) or not 0.0 <= d <= 1.0 else 0\n")
            raise_finding(check, Finding(
                f"relu({x!r}) is {fmt(run.value)} with derivative {fmt(d)}; the value must be 0 "
                f"and the derivative inside the one-sided bracket [0, 1]", g,
                expected="value 0.0, derivative in [0, 1]",
                actual={"value": fmt(run.value), "grad": fmt(d)},
                repro={"kind": "kink", "body": body.replace("{x}", repr(x))}))
    check.record.notes["relu'(0)"] = conventions["0.0"]
    check.record.notes["relu'(-0.0)"] = conventions["-0.0"]


def raise_finding(check: Any, f: Finding) -> None:
    """Report ``f`` outside hypothesis (no shrinking needed)."""
    check.guard(lambda: _raise(f))


def _raise(f: Finding) -> None:
    raise f
