"""Level ``optimizer``: an Adam step on the engine against the exact Adam step."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import assume

from gradcert.graph import Graph
from gradcert.properties.assertions import fmt, graphs_for, judged
from gradcert.properties.runner import Finding

LR, BETAS, EPS, STEPS = 0.01, (0.9, 0.999), 1e-8, 3


def adam(ns: Any, p: Any, g: Any, m: Any, v: Any, t: int) -> tuple[Any, Any, Any]:
    """One Adam step (PyTorch's bias-corrected form) in numeric namespace ``ns``: ``(p, m,
    v)`` after it. ``ns`` is ``math`` (gradcert's float64 Adam, run in the judge, which
    never runs engine code, so nothing an engine does to ``math`` or the FPU reaches it)
    or an mpmath context (the exact step, its inputs exact too).

    >>> adam(math, 1.0, 0.5, 0.0, 0.0, 1)[0]  # the first step moves by lr (+ eps's share)
    0.9900000002
    """
    num = float if ns is math else ns.mpf
    b1, b2, lr, eps = num(BETAS[0]), num(BETAS[1]), num(LR), num(EPS)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
    return p - lr * mhat / (ns.sqrt(vhat) + eps), m, v


def test_adam(gradcert_check: Any) -> None:
    """Three Adam steps on a random graph's leaves (the parameters): the engine's own
    optimizer where it has one, else gradcert's float64 Adam on the engine's gradients.
    At each step the exact step is taken from the same parameters with the exact
    gradients, carrying exact moments; the parameters must agree within a bound that
    propagates the tolerance model's gradient bounds through the update (first order),
    plus 16 ulps of the parameter for the update's own roundings."""
    import mpmath

    check = gradcert_check
    engine = check.engine
    own = bool(check.caps.has_adam) and not check.caps.functional
    check.record.notes["optimizer"] = "the engine's own Adam" if own else "gradcert's Adam"
    ctx = mpmath.mp.clone() if hasattr(mpmath.mp, "clone") else mpmath.MPContext()
    ctx.prec = 200

    def one(g0: Graph) -> None:
        ps = [float(x) for x in g0.inputs]
        m = [0.0] * len(ps)
        v = [0.0] * len(ps)
        me = [ctx.mpf(0)] * len(ps)
        ve = [ctx.mpf(0)] * len(ps)
        params: Any = None  # the engine's parameters: the leaves of the first graph built
        for t in range(1, STEPS + 1):
            g = g0.with_inputs(ps)
            ex, tol = judged(check, g)
            # g * g must not overflow: Adam's second moment is a float64 quantity too
            assume(all(abs(float(d)) < 1e150 for d in ex.grad_f64))
            if own:
                built = engine.build(g, params)
                params = params or built
                engine.backward(built)
                gs = engine.grads(built)
                engine.adam_step(params, step=t, lr=LR, betas=BETAS, eps=EPS)
                if check.caps.has_zero_grad:
                    engine.zero_grad(params)
                new = [engine.value(params, i) for i in params.graph.leaves]
            else:
                gs = list(engine.run(g).grads)
                new = []
                for i, (p, d) in enumerate(zip(ps, gs, strict=True)):
                    q, m[i], v[i] = adam(math, p, d, m[i], v[i], t)
                    new.append(q)
            for i, p in enumerate(ps):
                exact_p, me[i], ve[i] = adam(ctx, ctx.mpf(p), ctx.mpf(ex.grad[i]), me[i], ve[i],
                                             t)
                e = float(exact_p)
                gi = abs(float(ex.grad[i]))
                r = tol.grad[i] / max(gi, EPS)
                bound = 16 * _ulp(e) + LR * (2 * r + 64 * 2.0**-53) * t
                check.record.observe(abs(new[i] - e) / _ulp(e), abs(new[i] - e) / max(abs(e),
                                                                                      1e-300),
                                     kind="param", inputs=list(g0.inputs),
                                     of_bound=abs(new[i] - e) / bound)
                if not (math.isfinite(new[i]) and abs(new[i] - e) <= bound):
                    raise Finding(
                        f"after Adam step {t}, parameter {i} is {fmt(new[i])}; the exact step "
                        f"gives {fmt(e)} (off by {fmt(abs(new[i] - e))}, bound {fmt(bound)})",
                        g0, [f"gradient at step {t}: engine {fmt(gs[i])}, exact "
                             f"{fmt(ex.grad_f64[i])}",
                             f"lr={LR}, betas={BETAS}, eps={EPS}; "
                             f"{check.record.notes['optimizer']}"],
                        expected=fmt(e), actual=fmt(new[i]), repro=None)
            ps = new
        check.record.checked()

    strategy = graphs_for(check, max_leaves=3, leaves="realistic")
    check.examples(strategy, one, examples=max(5, check.profile.examples // 2))


def _ulp(x: float) -> float:
    return math.ulp(x) if math.isfinite(x) else math.inf
