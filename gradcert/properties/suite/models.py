"""Level ``models``: gradients of small networks built from the atomic ops."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from gradcert.graph import trace
from gradcert.properties.assertions import check_graph

_W = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


def mlp_loss(n_in: int, n_hidden: int, act: str) -> Any:
    """``f(*weights, *x, y)``: a one-hidden-layer MLP's squared error, with ``act``."""

    def f(*a: Any) -> Any:
        k = 0
        w1 = [[a[k + i * n_in + j] for j in range(n_in)] for i in range(n_hidden)]
        k += n_in * n_hidden
        b1 = list(a[k:k + n_hidden])
        k += n_hidden
        w2 = list(a[k:k + n_hidden])
        k += n_hidden
        b2 = a[k]
        x = a[k + 1:k + 1 + n_in]
        y = a[k + 1 + n_in]
        hidden = []
        for i in range(n_hidden):
            s = b1[i]
            for j in range(n_in):
                s = s + w1[i][j] * x[j]
            hidden.append(getattr(s, act)())
        out = b2
        for i in range(n_hidden):
            out = out + w2[i] * hidden[i]
        d = out - y
        return d * d

    return f, n_in * n_hidden + 2 * n_hidden + 1 + n_in + 1


def test_mlp(gradcert_check: Any) -> None:
    """A 2-3-1 MLP (tanh, else relu) with a squared-error loss; every weight and input a leaf."""
    check = gradcert_check
    sound = check.sound_ops  # a wrong tanh is ops.values' finding: use relu then
    act = next((a for a in ("tanh", "relu") if a in sound),
               "tanh" if "tanh" in check.caps.ops else "relu")
    check.require("add", "mul", "sub", act)
    f, n = mlp_loss(2, 3, act)
    check.record.notes["activation"] = act
    check.examples(st.lists(_W, min_size=n, max_size=n),
                   lambda xs: check_graph(check, trace(f, xs)),
                   examples=max(5, check.profile.examples // 2))


def attention_loss(seq: int, dim: int, classes: int) -> Any:
    """``f(*q, *k, *v, *w, target-free)``: one attention head (softmax over ``seq``
    keys, scaled by 1/sqrt(dim)), mean-pooled, a linear layer to ``classes`` logits and
    the cross-entropy of class 0, all with +, *, exp, log and /."""
    scale = 1.0 / dim**0.5

    def f(*a: Any) -> Any:
        per = seq * dim
        q = [a[i * dim:(i + 1) * dim] for i in range(seq)]
        k = [a[per + i * dim:per + (i + 1) * dim] for i in range(seq)]
        v = [a[2 * per + i * dim:2 * per + (i + 1) * dim] for i in range(seq)]
        w = [a[3 * per + c * dim:3 * per + (c + 1) * dim] for c in range(classes)]
        pooled = [None] * dim
        for i in range(seq):
            scores = []
            for j in range(seq):
                s = q[i][0] * k[j][0]
                for d in range(1, dim):
                    s = s + q[i][d] * k[j][d]
                scores.append((s * scale).exp())
            z = scores[0]
            for s in scores[1:]:
                z = z + s
            for d in range(dim):
                o = scores[0] / z * v[0][d]
                for j in range(1, seq):
                    o = o + scores[j] / z * v[j][d]
                pooled[d] = o if pooled[d] is None else pooled[d] + o
        logits = []
        for c in range(classes):
            s = w[c][0] * pooled[0]
            for d in range(1, dim):
                s = s + w[c][d] * pooled[d]
            logits.append(s.exp())
        z = logits[0]
        for e in logits[1:]:
            z = z + e
        return -(logits[0] / z).log()

    return f, 3 * seq * dim + classes * dim


def test_attention(gradcert_check: Any) -> None:
    """A tiny attention block (2 tokens, 2 dims, 2 classes) with softmax and cross-entropy."""
    check = gradcert_check
    check.require("add", "mul", "mulc", "div", "exp", "log", "neg")
    f, n = attention_loss(2, 2, 2)
    check.examples(st.lists(_W, min_size=n, max_size=n),
                   lambda xs: check_graph(check, trace(f, xs)),
                   examples=max(5, check.profile.examples // 2))
