"""An independent reference for the oracle: values and gradients in mpmath at
thousands of bits, by its own reverse mode over the textbook derivatives of
mp_ops (not the op table), and its own float64 rounding (Python's correctly
rounded ``float(Fraction)``, not the oracle's).

A result is taken as the reference's only where two runs, at P and 2P bits,
round every value and leaf gradient to the same float64 (Herbie's ground
truth: a heuristic, but one that shares no code and no error analysis with
the oracle). P starts at 3000 bits and doubles up to 24000; a graph with a
value or gradient on a float64 rounding midpoint, or within a relative
2**(64 - P) of one, goes on to 24000 bits (a midpoint at 6000 bits may be
2**-6000 off one, as (x - 2) * sigmoid(4159); exp(log1p(1e16)) is the midpoint
1e16 + 1 exactly, but no precision computes it so), and one still there is
decided only in exact fractions, where the graph is rational. It does not
decide graphs that take an exponential of a number beyond 2**2048.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from fractions import Fraction

import mpmath
from mp_ops import mp_in_domain, mp_op, mp_partials

from gradcert.graph import Graph

START_BITS = 3000
MAX_BITS = 24000


def to_float(x) -> float:
    """x (an mpf) correctly rounded to float64, ties to even, through Fraction."""
    sign, man, exp, bc = x._mpf_
    if not man:
        if exp:  # inf or nan
            raise ValueError(f"not a finite number: {x}")
        return -0.0 if sign else 0.0
    top = exp + bc  # 2**(top - 1) <= |x| < 2**top
    if top > 1030:
        return -math.inf if sign else math.inf
    if top < -1080:
        return -0.0 if sign else 0.0
    q = Fraction(man) * (Fraction(2) ** exp)
    try:
        f = float(q)
    except OverflowError:
        f = math.inf
    return -f if sign else f


class OutOfReach(Exception):
    """An exponential of a number beyond 2**2048: mpmath has no exponent limit, and
    exp of an integer n at more than 600 bits is e**n by squaring, log2(n) squarings
    at 4 log2(n) bits more than the precision (minutes for n = 2**(2**19))."""


_EXPONENTIAL = {"exp", "sigmoid", "tanh", "expm1", "erf", "sin", "cos", "powc", "pow"}
_REACH = 2048


class OutOfDomain(Exception):
    def __init__(self, node: int) -> None:
        super().__init__(node)
        self.node = node


@dataclass
class Run:
    values: list  # mpf per node
    grads: list  # mpf per leaf


def run(graph: Graph, bits: int) -> Run:
    """Forward and reverse mode at ``bits`` bits; OutOfDomain naming the first node
    whose operands leave its op's domain."""
    ctx = mpmath.MPContext()
    ctx.prec = bits
    vals: list = []
    parts: list = []
    for i, n in enumerate(graph.nodes):
        if n.op == "leaf":
            vals.append(ctx.mpf(n.value))
            parts.append(())
            continue
        c = None if n.const is None else ctx.mpf(n.const)
        xs = [vals[a] for a in n.args]
        if n.op in _EXPONENTIAL and any(x and ctx.mag(x) > _REACH for x in xs):
            raise OutOfReach(i)
        if not mp_in_domain(n.op, xs, c):
            raise OutOfDomain(i)
        vals.append(mp_op(ctx, n.op, c)(*xs))
        parts.append(mp_partials(ctx, n.op, c)(*xs))
    adj = [ctx.mpf(0)] * len(vals)
    adj[-1] = ctx.mpf(1)
    for i in range(len(vals) - 1, -1, -1):
        if adj[i]:
            for a, p in zip(graph.nodes[i].args, parts[i], strict=True):
                adj[a] += adj[i] * p
    return Run(vals, [adj[i] for i in graph.leaves])


@dataclass
class Reference:
    """The reference's answer: float64 values and gradients, or the node whose
    operands are out of domain, or neither when the precisions never agreed."""

    values_f64: tuple | None = None
    grad_f64: tuple | None = None
    domain_node: int | None = None
    bits: int = 0
    decided: bool = True


def _rounded(r: Run) -> tuple[tuple, tuple]:
    return tuple(map(to_float, r.values)), tuple(map(to_float, r.grads))


def on_midpoint(x, bits: int | None = None) -> bool:
    """Whether x (an mpf) is exactly halfway between two float64s, or within a
    relative 2**(64 - bits) of it (a value computed at ``bits`` bits that may be
    one exactly: exp(log1p(1e16)) is 1e16 + 1)."""
    sign, man, exp, bc = x._mpf_
    if not man or not -1080 <= exp + bc <= 1030:
        return False
    q = Fraction(man) * (Fraction(2) ** exp) * (-1 if sign else 1)
    f = to_float(x)
    edge = Fraction(2) ** 1024  # where the float64 after the largest one would be
    if math.isinf(f):
        f = math.copysign(sys.float_info.max, f)
    slack = abs(q) / 2 ** (bits - 64) if bits is not None else 0
    return any(abs(q - (Fraction(f) + (Fraction(n) if math.isfinite(n) else edge * int(n > 0)
                                       - edge * int(n < 0))) / 2) <= slack
               for n in (math.nextafter(f, math.inf), math.nextafter(f, -math.inf)))


def reference(graph: Graph, start: int = START_BITS, top: int = MAX_BITS) -> Reference:
    """The float64 values and gradients of ``graph`` once two precisions agree."""
    bits = start
    prev = None
    while bits <= top:
        tie = False
        try:
            r = run(graph, bits)
            got: tuple | int = _rounded(r)
            tie = any(on_midpoint(v, bits) for v in (*r.values, *r.grads))
        except OutOfDomain as e:
            got = e.node
        except OutOfReach:
            return Reference(decided=False, bits=bits)
        if tie and bits * 2 > top:  # on a midpoint still: only exact fractions can tell
            return _rational(graph)
        # a midpoint may be one only at this precision (1 - 2**-6000): go on to the top
        if prev is not None and got == prev and not tie:
            if isinstance(got, int):
                return Reference(domain_node=got, bits=bits)
            return Reference(got[0], got[1], bits=bits)
        prev = got
        bits *= 2
    return Reference(decided=False, bits=bits // 2)


class _Irrational(Exception):
    pass


class _Fractions:
    """A numeric context of exact fractions for mp_ops: its functions raise."""

    mpf = Fraction

    @staticmethod
    def power(x, c):
        if c.denominator != 1 or abs(c) > 4096:
            raise _Irrational("power")
        return x ** int(c)

    def __getattr__(self, name):
        def irrational(*args):
            raise _Irrational(name)
        return irrational


def _rational(graph: Graph) -> Reference:
    """The graph evaluated in exact fractions, where every op it uses is rational."""
    ctx = _Fractions()
    vals: list = []
    parts: list = []
    try:
        for i, n in enumerate(graph.nodes):
            if n.op == "leaf":
                vals.append(Fraction(n.value))
                parts.append(())
                continue
            c = None if n.const is None else Fraction(n.const)
            xs = [vals[a] for a in n.args]
            if not mp_in_domain(n.op, xs, c):
                return Reference(domain_node=i)
            vals.append(Fraction(mp_op(ctx, n.op, c)(*xs)))
            parts.append(mp_partials(ctx, n.op, c)(*xs))
            if max(vals[-1].numerator.bit_length(), vals[-1].denominator.bit_length()) > 10**5:
                raise _Irrational("too large")
    except _Irrational:
        return Reference(decided=False)
    adj = [Fraction(0)] * len(vals)
    adj[-1] = Fraction(1)
    for i in range(len(vals) - 1, -1, -1):
        if adj[i]:
            for a, p in zip(graph.nodes[i].args, parts[i], strict=True):
                adj[a] += adj[i] * p
    f = [_fraction_float(v) for v in vals]
    return Reference(tuple(f), tuple(_fraction_float(adj[i]) for i in graph.leaves))


def _fraction_float(q: Fraction) -> float:
    try:
        return float(q)  # correctly rounded, ties to even
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def disagreement(graph: Graph, ex, ref: Reference) -> str | None:
    """Why a certified oracle result ``ex`` is wrong by the reference (None if it
    agrees, or if the reference could not decide)."""
    if not ref.decided:
        return None
    if ref.domain_node is not None:
        return f"the reference leaves the domain at node {ref.domain_node}; the oracle certified"
    for i, (a, b) in enumerate(zip(ex.values_f64, ref.values_f64, strict=True)):
        if a != b:
            return f"node {i}: oracle {a!r}, reference {b!r}"
    for k, (a, b) in enumerate(zip(ex.grad_f64, ref.grad_f64, strict=True)):
        if a != b:
            return f"gradient of leaf {k}: oracle {a!r}, reference {b!r}"
    return None
