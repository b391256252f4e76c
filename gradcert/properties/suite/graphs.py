"""Level ``graphs``: random graphs over the engine's ops, against the oracle and against
directional finite differences."""

from __future__ import annotations

import math
from typing import Any

from gradcert.graph import Graph
from gradcert.properties import strategies as gs
from gradcert.properties.assertions import check_graph, fmt, oracle
from gradcert.properties.runner import EngineRaised, Finding


def _ops(check: Any) -> frozenset[str]:
    ops = check.sound_ops  # the ops the op screen finds right: an op's defect is ops.*'s
    if not ops:
        check.unsupported("the engine supports no op of the op table")
    return ops


def test_oracle(gradcert_check: Any) -> None:
    check = gradcert_check
    strategy = gs.graphs(_ops(check), max_nodes=check.profile.max_nodes)
    check.examples(strategy, lambda g: check_graph(check, g))


class FdDisagrees(Finding):
    pass


def test_finite_differences(gradcert_check: Any) -> None:
    """The engine's gradient, projected on a random direction, against a directional
    finite difference of the engine's own forward; a disagreement counts only when the
    exact directional derivative sides with the finite difference."""
    from hypothesis import reject

    from gradcert.oracle.fd import directional_check

    check = gradcert_check
    ops = _ops(check) - {"relu"}  # a finite difference across relu's kink is meaningless
    if not ops:
        check.unsupported("no smooth op to difference")
    strategy = gs.graphs(ops, max_nodes=min(check.profile.max_nodes, 10), leaves="realistic")
    seed = check.seed

    def forward(g: Graph, xs: Any) -> float:
        try:
            return check.engine.forward(g.with_inputs(xs))
        except EngineRaised:
            return math.nan

    def one(g: Graph) -> None:
        truth = oracle(check, g)
        if truth is None:
            reject()
        ex, tol = truth
        run = check.engine.run(g)
        res = directional_check(lambda xs: forward(g, xs), list(g.inputs), list(run.grads),
                                seed=seed)
        check.record.checked()
        if not math.isfinite(res.fd):
            reject()
        if res.agrees():
            return
        d = list(res.direction)
        exact_dd = float(sum(float(e) * di for e, di in zip(ex.grad, d, strict=True)))
        bound = float(sum(b * abs(di) for b, di in zip(tol.grad, d, strict=True)))
        if abs(float(res.ad) - exact_dd) <= bound:
            check.record.notes["fd_noise"] = check.record.notes.get("fd_noise", 0) + 1
            return  # the finite difference is the one that is off
        raise FdDisagrees(
            f"along direction {[fmt(x) for x in d]}, the engine's gradient gives "
            f"{fmt(res.ad)} but finite differences of its forward give {fmt(res.fd)} "
            f"(exact: {fmt(exact_dd)}, bound {fmt(bound)})", g,
            [f"engine gradient: {[fmt(x) for x in run.grads]}",
             f"exact gradient:  {[fmt(x) for x in ex.grad_f64]}",
             f"tolerance model: {tol.describe()}"],
            expected={"directional": fmt(exact_dd), "fd": fmt(res.fd)},
            actual={"directional": fmt(res.ad)}, repro={"kind": "oracle", "ex": ex, "tol": tol})

    check.examples(strategy, one)
