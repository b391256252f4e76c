"""Small models built only from the Value ops: an MLP and a tiny GPT.

Every weight comes from a seeded ``random.Random``; nothing touches the
global random state. The GPT follows microgpt: lists of Values for vectors,
token and position embeddings, rmsnorm, causal attention with a softmax, a
relu MLP block, a linear head and a cross-entropy loss.

>>> net = MLP(2, [4, 1], seed=1)
>>> len(net.parameters())
17
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from gradcert.engine.value import Value

__all__ = ["GPT", "MLP", "Layer", "Module", "Neuron", "cross_entropy", "linear",
           "rmsnorm", "softmax"]

Vector = list[Value]
Matrix = list[list[Value]]


class Module:
    """Something with parameters (Values) that an optimizer updates."""

    def parameters(self) -> list[Value]:
        """Every trainable Value, in a fixed order."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0.

        >>> n = Neuron(1); n(n.w).backward(); n.zero_grad(); n.w[0].grad
        0.0
        """
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """``relu(w . x + b)``, or without the relu when ``nonlin`` is False.

    >>> n = Neuron(2, nonlin=False, rng=random.Random(0))
    >>> n([1.0, 0.0]).data == n.w[0].data + n.b.data
    True
    """

    def __init__(self, nin: int, nonlin: bool = True, rng: random.Random | None = None) -> None:
        rng = rng or random.Random(0)
        self.w = [Value(rng.uniform(-1.0, 1.0) / math.sqrt(nin)) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Value | float]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class Layer(Module):
    """``nout`` neurons over the same inputs.

    >>> len(Layer(3, 2)([1.0, 2.0, 3.0]))
    2
    """

    def __init__(self, nin: int, nout: int, nonlin: bool = True,
                 rng: random.Random | None = None) -> None:
        rng = rng or random.Random(0)
        self.neurons = [Neuron(nin, nonlin, rng) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    """Layers of sizes ``nouts`` after ``nin`` inputs; relu on all but the last.

    >>> MLP(2, [3, 1], seed=0)([0.5, -0.5]).__class__.__name__
    'Value'
    """

    def __init__(self, nin: int, nouts: Sequence[int], seed: int = 0) -> None:
        rng = random.Random(seed)
        sizes = [nin, *nouts]
        self.layers = [Layer(sizes[i], sizes[i + 1], i < len(nouts) - 1, rng)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        out: list = list(x)
        for layer in self.layers:
            out = layer(out)
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]


# -- the pieces of a transformer, on lists of Values -------------------------


def linear(x: Sequence[Value], w: Matrix) -> Vector:
    """``w @ x`` for a matrix given as rows.

    >>> [v.data for v in linear([Value(1.0), Value(2.0)], [[Value(3.0), Value(4.0)]])]
    [11.0]
    """
    return [sum((wi * xi for wi, xi in zip(row, x, strict=True)), Value(0.0)) for row in w]


def softmax(logits: Sequence[Value]) -> Vector:
    """Softmax, shifted by the largest logit (a plain float) so exp cannot overflow.

    >>> [round(p.data, 4) for p in softmax([Value(1000.0), Value(1000.0)])]
    [0.5, 0.5]
    """
    m = max(v.data for v in logits)
    exps = [(v - m).exp() for v in logits]
    total = sum(exps[1:], exps[0])
    return [e / total for e in exps]


def rmsnorm(x: Sequence[Value]) -> Vector:
    """``x / sqrt(mean(x^2) + 1e-5)``.

    >>> [round(v.data, 3) for v in rmsnorm([Value(3.0), Value(-3.0)])]
    [1.0, -1.0]
    """
    ms = sum((xi * xi for xi in x), Value(0.0)) / len(x)
    scale = (ms + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def cross_entropy(logits: Sequence[Value], target: int) -> Value:
    """``-log softmax(logits)[target]``, as logsumexp minus the target's logit.

    >>> round(cross_entropy([Value(0.0), Value(0.0)], 1).data, 6)  # log 2
    0.693147
    """
    m = max(v.data for v in logits)
    exps = [(v - m).exp() for v in logits]
    return sum(exps[1:], exps[0]).log() + m - logits[target]


class GPT(Module):
    """A tiny decoder-only transformer over token ids (microgpt's, one page).

    ``loss(tokens)`` is the mean cross-entropy of predicting each next token.

    >>> gpt = GPT(vocab_size=3, block_size=4, n_embd=4, n_head=2, seed=0)
    >>> round(gpt.loss([0, 1, 2]).data, 1)  # about log(3) at initialization
    1.1
    """

    def __init__(self, vocab_size: int, block_size: int, n_embd: int = 16,
                 n_head: int = 2, n_layer: int = 1, seed: int = 0) -> None:
        if n_embd % n_head:
            raise ValueError(f"GPT: n_embd {n_embd} is not a multiple of n_head {n_head}")
        rng = random.Random(seed)

        def matrix(nout: int, nin: int, std: float = 0.08) -> Matrix:
            return [[Value(rng.gauss(0.0, std)) for _ in range(nin)] for _ in range(nout)]

        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_embd, self.n_head = n_embd, n_head
        self.state: dict[str, Matrix] = {
            "wte": matrix(vocab_size, n_embd), "wpe": matrix(block_size, n_embd),
            "lm_head": matrix(vocab_size, n_embd)}
        for i in range(n_layer):
            for name in ("wq", "wk", "wv", "wo"):
                self.state[f"h{i}.{name}"] = matrix(n_embd, n_embd)
            self.state[f"h{i}.fc1"] = matrix(4 * n_embd, n_embd)
            self.state[f"h{i}.fc2"] = matrix(n_embd, 4 * n_embd)
        self.n_layer = n_layer

    def parameters(self) -> list[Value]:
        return [p for mat in self.state.values() for row in mat for p in row]

    def __call__(self, tokens: Sequence[int]) -> list[Vector]:
        """The logits after each token, attending only to earlier positions."""
        if not 0 < len(tokens) <= self.block_size:
            raise ValueError(f"GPT: {len(tokens)} tokens, block_size is {self.block_size}")
        sd, hs = self.state, self.n_embd // self.n_head
        keys: list[list[Vector]] = [[] for _ in range(self.n_layer)]
        values: list[list[Vector]] = [[] for _ in range(self.n_layer)]
        out = []
        for pos, tok in enumerate(tokens):
            x = rmsnorm([t + p for t, p in zip(sd["wte"][tok], sd["wpe"][pos], strict=True)])
            for i in range(self.n_layer):
                h = rmsnorm(x)
                q = linear(h, sd[f"h{i}.wq"])
                keys[i].append(linear(h, sd[f"h{i}.wk"]))
                values[i].append(linear(h, sd[f"h{i}.wv"]))
                att: Vector = []
                for j in range(0, self.n_embd, hs):
                    scores = [sum((q[j + d] * k[j + d] for d in range(hs)), Value(0.0))
                              / math.sqrt(hs) for k in keys[i]]
                    w = softmax(scores)
                    att += [sum((wt * v[j + d] for wt, v in zip(w, values[i], strict=True)),
                                Value(0.0)) for d in range(hs)]
                x = [a + b for a, b in zip(x, linear(att, sd[f"h{i}.wo"]), strict=True)]
                hidden = [v.relu() for v in linear(rmsnorm(x), sd[f"h{i}.fc1"])]
                x = [a + b for a, b in zip(x, linear(hidden, sd[f"h{i}.fc2"]), strict=True)]
            out.append(linear(x, sd["lm_head"]))
        return out

    def loss(self, tokens: Sequence[int]) -> Value:
        """Mean cross-entropy of ``tokens[1:]`` given the tokens before each."""
        if len(tokens) < 2:
            raise ValueError("GPT.loss needs at least two tokens")
        logits = self(tokens[:-1])
        losses = [cross_entropy(lg, t) for lg, t in zip(logits, tokens[1:], strict=True)]
        return sum(losses[1:], losses[0]) / len(losses)
