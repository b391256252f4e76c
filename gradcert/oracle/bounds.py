"""The oracle's running error analysis, written once against the op rows.

One pass evaluates a graph at ``p`` bits in MPFR (:mod:`gradcert.oracle.numbers`),
forward with each op row's ``eval`` and backward by reverse mode, and
carries beside every value, local partial and gradient a bound on its
absolute error (a running error analysis, as in Higham's *Accuracy and
Stability of Numerical Algorithms*, section 3.3). Why each bound holds:

- **An op's own roundings.** MPFR rounds each operation and function
  correctly, so one rounding moves a result by at most 2**-p of it; a row's
  ``eval`` composes ``roundings`` of them whose relative errors add (products
  and quotients, and sums of terms of one sign), so its value, and each
  partial, is off by at most ``k * 2**(2 - p)`` relative (the factor 4
  covers the compounding and |exact| <= 2|computed|). A result MPFR says is
  exact (its ternary value, or the context's inexact flag over a whole
  ``eval``) has no error of its own.
- **Propagation.** By the mean value theorem an operand known to within e
  moves the value by at most e times the largest |partial| over the
  operand's error interval, which is at most |computed partial| plus the
  partial's error bound; that bound is its own rounding plus the row's
  ``variation``, the largest move of the exact partial over the interval
  (each row states why its formula bounds that). A kink's partials are
  exact where the branch is certain and jump by the row's ``jump`` where
  it is not, and it is 1-Lipschitz: the same rule bounds it.
- **Domains, kinks and poles.** A domain test, a kink's branch, and every
  pole a rule divides by lie at the row's ``edge`` or ``switch``; they are
  trusted only when the operand is 16 times its error bound away from it
  (``MARGIN``). Then the exact operand is on the same side, ``DomainError``
  is certain, and a rule's ``near(x) = |x| - e`` is known to a few
  roundings, relative. Otherwise the run is marked doubtful (a higher
  precision decides) and no domain error is raised.
- **Exact identities.** ``a - a`` and ``a / a`` of one number (the row's
  ``same``) are exact, and so is an op of its inverse (the row's
  ``partner``): the exact value of ``exp(log(y))`` is y's, so the node takes
  y's value and bound, and reverse mode passes its gradient straight to y
  with the exact partial 1 (the chain rule through the pair). An op of an
  inverse shifted by a constant (the row's ``shifted``: ``expm1(log(y))`` is
  y - 1) takes y + k, correctly rounded, with y's bound and that rounding.
  A relu or abs between the two (``log1p(abs(expm1(y)))``) is the identity
  where its operand z is positive, and then so is the pair; each run takes
  the shortcut only where z > 0 is certain (16 error bounds from 0), where
  relu' = abs' = 1 too, so the chain rule still gives the partial 1.
- **Reverse mode.** A term ``g * p`` is off by |p| e_g + (|g| + e_g) e_p and
  its rounding; each sum by its rounding too.
- **What a run may skip.** A run of the steps the output or a domain test
  depends on (``Plan.needed``) computes every number those steps read, so
  their values, bounds, gradients and domain decisions are the same as in a
  run of every step; the others are run when every node's value is asked for.
- **MPFR's range.** MPFR's exponents reach 2**(+-2**30). The general pass
  refuses (:class:`Beyond`) any value, partial, gradient or bound above
  2**(2**26), and any overflow. An underflowed result is within
  ``numbers.TINY`` = 2**-(2**30) of the exact one; within one node it is
  multiplied by a few factors on its way to a value, partial or bound (every
  row's ``eval`` and ``variation`` and the rules here are short products),
  each a magnitude below 2**(2**26) or, at a pole, a power of the reciprocal
  distance to it, which the partial's own magnitude bounds, so in all by
  less than 2**(2**29), and it moves the result by less than 2**-(2**29):
  ``SLACK`` = 2**-(2**28) is added to each bound of a node (and each
  reverse-mode term) where MPFR underflowed.
- **The bounds' own arithmetic.** The bounds are computed in floats (the
  screen) or in MPFR at p bits (the general pass), rounded to nearest: each
  operation moves a bound by a relative 2**-53 at most, a rule's libm call
  by 2**-52, and a pole's ``near`` by 3 * 2**-53 under the margin, so each
  node's computed bound is within a relative 2**-45 of what exact
  arithmetic would give from its inputs' computed bounds. Its inputs may
  themselves fall short of their exact bounds by a relative delta; a bound
  is linear in them except where a rule reads them inside an interval's
  ``near`` or ``far``, and there the rows widen the interval by a relative
  2**-20, which covers any delta below that. So each node adds at most
  2**-45 to delta, which stays below 2**-20 for graphs up to 2**25 nodes
  deep, and the certificate (:mod:`gradcert.oracle.exact`) doubles every
  bound.

The screen keeps bounds and magnitudes as Python floats. Forward, that is
sound where every float it forms is a normal float or an exact zero: every
nonzero magnitude of a value, partial or constant within 2**+-128, and a
bound on one within [2**-500, 2**128], so a bound times four magnitudes stays
normal; at most 300 bits, so a rounding 2**(2 - p) of any of them does.
Backward, gradients may vanish far below that (a deep chain of contractions),
and a float product below the normal range loses up to 2**-1075, absolute.
So in reverse mode a bound is a float 0, a float of at least ``FLOOR`` =
2**-1000, or an MPFR number. A term's bound computed in floats from such
bounds, normal magnitudes and a gradient of at least ``FLOOR`` (or exactly 0,
which adds no term) loses at most
2**-1075 in each of its few operations that underflow: where it comes out at
least ``FLOOR`` that is a relative 2**-72, covered as the roundings above;
where it comes out below (from nonzero inputs), it is computed again in MPFR
at ``p`` bits, as is every term of a node whose gradient is nonzero and below
``FLOOR``, or whose bound is an MPFR number: nothing underflows there before MPFR's own
range, and a flag raised there sends the pass to the general one. Gradients
and their bounds stay below 2**400, so no term overflows. Outside that, or
when MPFR raises a flag, the screen gives up and the general pass, whose bounds are
MPFR numbers of any exponent within MPFR's range, decides at the same
precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gradcert.graph import DomainError, Graph, canonical
from gradcert.ops import OPS, Op
from gradcert.oracle import numbers
from gradcert.oracle.numbers import mpfr

__all__ = ["FLOOR", "MARGIN", "SCREEN_PRECS", "SLACK", "Beyond", "Facts", "Plan", "Run", "Step",
           "plan", "run", "sides"]

MARGIN = 16
"""A domain edge, kink or pole is trusted when the operand is this many error
bounds away from it."""

SCREEN_PRECS = range(53, 301)
"""The precisions at which the float-bound screen runs (see the module)."""

SLACK = mpfr(2) ** -(2**28)
"""Added to each bound of a node where MPFR underflowed (see the module)."""

_LO, _HI = 2.0**-128, 2.0**128  # the screen's nonzero magnitudes
_ELO, _EHI = 2.0**-500, 2.0**128  # and its nonzero bounds
_GHI = 2.0**400  # its gradients and their bounds
FLOOR = 2.0**-1000
"""In the screen's reverse mode, a float bound or gradient below this is made an MPFR
number (see the module)."""
_WHI = mpfr(2) ** 2**26  # the general pass's largest magnitude
_LINEAR, _KINK = "linear", "kink"
_ZEROS1, _ZEROS2 = (0.0,), (0.0, 0.0)
_ONE = (1,)  # the partial of exp(log(y)) in y
_ONES = (1.0,)  # and its magnitude


class Beyond(ArithmeticError):
    """A number of the graph is beyond the oracle's range (MPFR's exponents)."""

    def __init__(self, node: int, problem: str) -> None:
        super().__init__(node, problem)
        self.node, self.problem = node, problem


class Facts(NamedTuple):
    """What the steps of one op with one constant share (a pass unpacks these by name)."""

    op: Op  # the row
    const: Any  # the constant, an exact MPFR number, or None
    cf: float | None  # the constant as a float
    fn: Callable[..., Any]  # a linear op's spelling (its value), else the row's eval
    fixed: tuple[Any, ...] | None  # a linear op's partials, exact, computed once
    fixed_mags: tuple[float, ...]  # their magnitudes as floats (the screen's)
    rounds: tuple[float, float] | None  # the row's roundings (None: they depend on x)
    guarded: bool  # the row has a domain test
    domain: Callable[..., str | None] | None  # the row's domain test, if it has one
    edge: tuple[int, float] | None  # where that test flips: (operand, point)
    variation: Callable[..., tuple[Any, ...]]  # the row's bound on its partials' moves
    kink: bool  # the row is a kink
    sames: bool  # the row says what it gives when both operands are one number
    undoes: dict[str, float]  # g: k where op(g(y)) = y + k exactly (its partner, its shifted)


class Step(NamedTuple):
    """One inner node as a pass runs it."""

    node: int  # its id
    a: int  # its first operand's id
    b: int  # its second operand's id, or -1
    same: bool  # the row has a ``same`` and two operands: a pass asks ``Plan.identical``
    facts: Facts  # its op's, with its constant
    inverse: int  # y where the node is f(g(y)) and g is f's inverse (its row's partner), or
    # -1: then its value is y's, and reverse mode passes its gradient to y (partial 1)
    shift: float  # or f(g(y)) = y + shift exactly (the row's ``shifted``: expm1(log(y)))
    via: int  # z where the node is f(c(z)), z = g(y), c a relu or abs: f(g(y)) again, but
    # only where z > 0 is certain, which each run checks (else -1)


@dataclass
class Plan:
    """A graph as the passes run it: inner nodes as steps, leaves as exact numbers."""

    steps: list[Step]
    leaf_values: list[Any]
    leaves: tuple[int, ...]
    screenable: bool  # every leaf, constant and linear partial is within the screen's range
    graph: Graph
    needed: list[Step]  # the steps the output or a domain test depends on, in order

    def live(self) -> bytearray:
        """For each node, whether the output depends on it."""
        live = self.__dict__.get("_live")
        if live is None:
            live = self.__dict__["_live"] = bytearray(len(self.graph.nodes))
            live[-1] = 1
            for i, a, b, *_ in reversed(self.steps):
                if live[i]:
                    live[a] = 1
                    if b >= 0:
                        live[b] = 1
        return live

    def identical(self, a: int, b: int) -> bool:
        """Whether nodes a and b compute one number (:func:`gradcert.graph.canonical`,
        found once per graph: a pass asks only where their values are equal, which
        identical nodes' always are)."""
        same = self.__dict__.get("_same")
        if same is None:
            same = self.__dict__["_same"] = canonical(self.graph)
        return bool(same[a] == same[b])


@dataclass
class Run:
    """One pass: values, their bounds, gradients (None where none arrives) and their
    bounds, the nodes evaluated exactly at a kink; ``doubt`` names a node whose
    domain or branch this precision cannot decide (then nothing else is final)."""

    values: list[Any]
    errs: list[Any]
    grads: list[Any]
    gerrs: list[Any]
    kinks: list[int]
    doubt: tuple[int, str] | None
    prec: int
    leaves: tuple[int, ...]
    screen: bool
    nums: list[Any] = field(default_factory=list)  # the values as the bounds' numbers
    parts: list[Any] = field(default_factory=list)  # each node's partials
    perrs: list[Any] = field(default_factory=list)  # and bounds on their errors
    short: dict[int, int] = field(default_factory=dict)  # nodes taken as y + k: their y
    skipped: bool = False  # some steps were not run (their values are None)


def plan(graph: Graph) -> Plan:
    """The steps of ``graph``: constants converted exactly, linear partials computed
    once, an op of its inverse recognised, and the steps a certified result needs:
    those the output depends on, or a domain test (so every domain is decided as
    if all were run)."""
    nodes = graph.nodes
    steps: list[Step] = []
    leaf_values: list[Any] = [None] * len(nodes)
    leaves: list[int] = []
    screenable = True
    facts: dict[Any, Facts] = {}  # per op and constant
    made: dict[float, Any] = {}  # leaves repeat: convert each once
    number, exactly = numbers.number, numbers.exactly
    new = tuple.__new__  # a Step without NamedTuple's Python-level constructor
    with numbers.context(64):  # for exactly()
        for i, n in enumerate(nodes):
            name, const = n.op, n.const
            if name == "leaf":
                x = float(n.value)  # type: ignore[arg-type]
                v = made.get(x) if x else None  # (0.0 and -0.0 are equal keys)
                leaf_values[i] = v if v is not None else made.setdefault(x, exactly(x)) if x \
                    else number(x)
                leaves.append(i)
                screenable = screenable and (not x or _LO <= abs(x) <= _HI)
                continue
            key = name if const is None else (name, const) if const else \
                (name, const, math.copysign(1.0, const))  # the sign of a 0
            got = facts.get(key)
            if got is None:
                op = OPS[name]
                got = _FACTS.get(key)
                if got is None or got.op is not op:  # (a test may put a row in the table)
                    got = _facts(key, op, const)
                facts[key] = got
                screenable = screenable and (not const or _LO <= abs(const) <= _HI) and all(
                    not m or _LO <= m <= _HI for m in got.fixed_mags)  # (checked once, here)
            args = n.args
            if len(args) == 2:
                a, b = args
                steps.append(new(Step, (i, a, b, got.sames, got, -1, 0.0, -1)))
                continue
            a = args[0]
            inverse, shift, via = -1, 0.0, -1
            if got.undoes:
                inner = nodes[a]
                if inner.op in _COPIES and nodes[inner.args[0]].op != "leaf":
                    via = inner.args[0]  # relu(z), abs(z): z itself where z > 0
                    inner = nodes[via]
                if inner.op in got.undoes and inner.const is None:
                    inverse, shift = inner.args[0], got.undoes[inner.op]
                else:
                    via = -1
            steps.append(new(Step, (i, a, -1, False, got, inverse, shift, via)))
    need = bytearray(len(nodes))
    need[-1] = 1
    needed = []
    for step in reversed(steps):
        i, a, b = step[0], step[1], step[2]
        if need[i] or step.facts.guarded:
            needed.append(step)
            need[a] = 1
            if b >= 0:
                need[b] = 1
    needed.reverse()
    return Plan(steps, leaf_values, tuple(leaves), screenable, graph, needed)


_COPIES = ("relu", "abs")  # unary kinks that are the identity on positive numbers


_FACTS: dict[Any, Facts] = {}  # kept across graphs: made of exact numbers only
_FACTS_KEPT = 4096


def _facts(key: Any, op: Op, const: float | None) -> Facts:
    c = None if const is None else numbers.number(const)
    fixed = _fixed(op, c)
    edge = op.domain_edge(const)
    got = Facts(op, c, const, op._apply if fixed is not None else op.eval, fixed,
                 tuple(abs(float(q)) for q in fixed) if fixed is not None else (),
                 None if callable(op.roundings) else op.roundings,
                 op.has_domain or edge is not None, op.domain if op.has_domain else None, edge,
                 op.variation, op.kind == _KINK, op.same is not None, _undoes(op))
    if len(_FACTS) < _FACTS_KEPT:
        _FACTS[key] = got
    return got


def _undoes(op: Op) -> dict[str, float]:
    """The ops g with op(g(y)) = y + k exactly, and their k: the row's ``partner``
    (k = 0) and its ``shifted``."""
    got = {op.partner: 0.0} if op.partner is not None else {}
    if op.shifted is not None:
        got[op.shifted[0]] = op.shifted[1]
    return got


def _fixed(op: Op, c: Any) -> tuple[Any, ...] | None:
    """A linear op's partials, if they are exact numbers (1 / c may not be)."""
    if op.kind != _LINEAR:
        return None
    const = [] if c is None else [c]
    if op.domain(*([1] * op.arity), *const):
        return None
    with numbers.context(64) as mc:
        ps = op.eval(numbers, *([mpfr(1)] * op.arity), *const)[1]
        # 0, 1 and -1 as ints: reverse mode passes a gradient through them unmultiplied
        return None if mc.inexact else tuple(int(q) if q in (0, 1, -1) else q for q in ps)


def run(p: Plan, prec: int, *, screen: bool, track: bool = True,
        every: bool = True) -> Run | None:
    """One pass at ``prec`` bits, with bounds when ``track``: on float bounds
    (``screen``; None where it gives up) or on MPFR bounds; of every step, or
    of the steps the output or a domain test depends on (``Plan.needed``). Raises
    DomainError for an input certainly outside an op's domain, and :class:`Beyond`."""
    if screen and not (p.screenable and prec in SCREEN_PRECS):
        return None
    steps = p.steps if every else p.needed
    with numbers.context(prec) as mc:
        try:
            got = _forward(p, steps, prec, mc, screen, track)
            if isinstance(got, Run) or got is None:
                return got
            got = _reverse(p, steps, prec, screen, track, mc, *got)
        except DomainError:
            raise
        except (OverflowError, ZeroDivisionError, ValueError) as e:
            if screen:  # a float bound overflowed: the general pass decides
                return None
            raise Beyond(-1, f"the error analysis failed: {e}") from e
        if screen and got is not None and _flagged(mc):
            return None
    return got


def _flagged(mc: Any) -> bool:
    """Whether MPFR left its range or made a NaN in the context ``mc``."""
    return bool(mc.overflow or mc.underflow or mc.invalid or mc.erange or mc.divzero)


def _forward(p: Plan, steps: list[Step], prec: int, mc: Any, screen: bool, track: bool) -> Any:
    """Values, partials and their bounds; a doubtful Run, or None (the screen gives
    up), or the lists the reverse pass reads."""
    ns = math if screen else numbers  # the bounds' numeric namespace
    unit = 2.0 ** (2 - prec) if screen else numbers.unit(prec)  # one rounding, relative
    hi = _WHI  # the general pass's range
    values: list[Any] = list(p.leaf_values)
    n = len(values)
    errs: list[Any] = [0.0] * n
    nums: list[Any] = [0.0] * n  # each value as the bounds' numbers: a float, or itself
    for i in p.leaves:
        nums[i] = float(values[i]) if screen else values[i]
    parts: list[Any] = [()] * n
    pmags: list[Any] = [()] * n  # |partials|, as the bounds' numbers
    perrs: list[Any] = [()] * n  # bounds on the partials' errors
    kinks: list[int] = []
    short: dict[int, int] = {}  # the nodes computed as y + k, and their y

    def decided() -> bool:  # whether this run may decide a domain: MPFR kept its range
        return not screen or not _flagged(mc)

    for node, a, b, same, facts, inverse, shift, via in steps:
        (op, c, cf, fn, fixed, fixed_mags, rounds, guarded, domain, edge, variation, kink,
         _, _) = facts
        x = values[a]
        ex = errs[a]
        binary = b >= 0
        if binary:
            y = values[b]
            ey = errs[b]
            if same:  # a - a, a / a, max(a, a): only identical nodes, whose values are equal
                same = a == b or x == y and p.identical(a, b)
        if guarded:
            if edge is not None:  # the domain test is trusted MARGIN error bounds from its edge
                k, point = edge
                ek = ey if k else ex
                if ek:
                    xk = y if k else x
                    dist = (abs(nums[b if k else a]) if not point else abs(float(xk - point))) \
                        if screen else abs(xk - point)
                    if not ek * MARGIN < dist:
                        if not decided():
                            return None
                        return Run(values, errs, [], [], kinks, (node, (
                            f"cannot decide at {prec} bits whether the input of {op.name} "
                            f"is in its domain")), prec, p.leaves, screen)
            if domain is not None:
                why = domain(x, y) if binary else domain(x) if c is None else domain(x, c)
                if why:
                    if not decided():
                        return None  # an operand may have under- or overflowed: not a decision
                    operands = (x, y) if binary else (x,) if c is None else (x, c)
                    raise DomainError(node, op.name, [numbers.to_mpf(t, numbers.mpmath_context())
                                                      for t in operands], why)
        if fixed is not None:  # a linear op: exact partials, one rounding of its own
            v = fn(x, y) if binary else fn(x) if c is None else fn(x, c)
            values[node] = v
            parts[node] = fixed
            if not track:
                continue
            fv = float(v) if screen else v
            av = abs(fv)
            pm: tuple[Any, ...] = fixed_mags if screen else tuple(abs(q) for q in fixed)
            e = av * unit if v.rc else 0.0
            if ex:
                e += pm[0] * ex
            if binary and ey:
                e += pm[1] * ey
            if same:
                e = 0.0  # a - a is exactly 0
            pe: tuple[Any, ...] = _ZEROS2 if binary else _ZEROS1
        else:
            if inverse >= 0 and via >= 0:  # f(relu(g(y))): f(g(y)) only where z = g(y) > 0
                z, ez = values[via], errs[via]
                if not (z > 0 and (not ez or ez * MARGIN < (nums[via] if screen else z))):
                    inverse = -1
            if inverse >= 0:  # exp(log(y)), log(exp(y)): exactly y, of partial 1 in y
                v = values[inverse] + shift if shift else values[inverse]  # expm1(log(y))
                values[node] = v
                parts[node] = _ONE
                short[node] = inverse
                if not track:
                    continue
                fv = float(v) if screen else v
                av = abs(fv)
                e = errs[inverse]  # y's bound: the exact value is y's; the partial 1 is exact
                if shift and v.rc:  # y + shift, correctly rounded
                    e += av * unit
                pm, pe = _ONES, _ZEROS1
            else:
                mc.inexact = False
                v, ps = fn(numbers, x, y) if binary else fn(numbers, x) if c is None \
                    else fn(numbers, x, c)
                values[node] = v
                parts[node] = ps
                if not track:
                    continue
                inexact = mc.inexact
                fv = float(v) if screen else v
                av = abs(fv)
                q0 = ps[0]
                f0 = float(q0) if screen else q0
                m0 = abs(f0)
                if binary:
                    q1 = ps[1]
                    f1 = float(q1) if screen else q1
                    m1 = abs(f1)
                    if screen and (not _LO <= m0 <= _HI and (m0 or q0)
                                   or not _LO <= m1 <= _HI and (m1 or q1)):
                        return None  # beyond the screen's range (erf'(30) is below float64's)
                elif screen and not _LO <= m0 <= _HI and (m0 or q0):
                    return None
                if not screen and (av > hi or m0 > hi or binary and m1 > hi):
                    _beyond(node, op)
                kv, kp = rounds or op.rounding_counts(abs(nums[a]), exact=True)
                # own roundings: a single-rounding value MPFR calls exact has none
                e = av * kv * unit if inexact and (kv != 1 or v.rc) else 0.0
                r0 = m0 * kp * unit if inexact and kp else 0.0
                if binary:
                    r1 = m1 * kp * unit if inexact and kp else 0.0
                    if ex or ey:
                        if kink:
                            if not same and not (ex + ey) * MARGIN < abs(
                                    float(op.switch(x, y)) if screen else  # type: ignore[misc]
                                    op.switch(x, y)):  # type: ignore[misc]
                                r0 = r1 = op.jump  # either branch: the partials jump
                        else:
                            v0, v1 = variation(ns, (nums[a], nums[b]), (ex, ey), None, fv,
                                               (f0, f1))
                            r0 += v0
                            r1 += v1
                        if ex:
                            e += (m0 + r0) * ex
                        if ey:
                            e += (m1 + r1) * ey
                    if kink and (same or not (ex or ey)) and \
                            op.switch(x, y) == 0:  # type: ignore[misc]
                        kinks.append(node)
                    if same and op.same != "first":
                        e = 0.0  # a - a, a / a: exact
                    if screen and (r0 and not _ELO <= r0 <= _EHI or r1 and not _ELO <= r1 <= _EHI):
                        return None
                    pm = (m0, m1)
                    pe = (r0, r1)
                else:
                    if ex:
                        if kink:
                            if not ex * MARGIN < abs(float(op.switch(x)) if screen  # type: ignore[misc]
                                                     else op.switch(x)):  # type: ignore[misc]
                                r0 = op.jump
                        else:
                            r0 += variation(ns, (nums[a],), (ex,), cf if screen else c, fv,
                                            (f0,))[0]
                        e += (m0 + r0) * ex
                    elif kink and op.switch(x) == 0:  # type: ignore[misc]
                        kinks.append(node)
                    if screen and r0 and not _ELO <= r0 <= _EHI:
                        return None
                    pm = (m0,)
                    pe = (r0,)
        if screen:  # a value or bound beyond the screen's range: the general pass decides
            if not _LO <= av <= _HI and (av or v) or e and not _ELO <= e <= _EHI:
                return None
        else:
            if mc.underflow or mc.overflow or mc.invalid:
                if mc.overflow or mc.invalid:
                    _beyond(node, op)
                e += SLACK  # see the module: what an underflow may have moved
                pe = tuple(r + SLACK for r in pe)
                mc.clear_flags()
            if av > hi or not e <= hi or not all(r <= hi for r in pe):
                _beyond(node, op)
        errs[node] = e
        nums[node] = fv
        pmags[node] = pm
        perrs[node] = pe
    return values, errs, nums, parts, pmags, perrs, kinks, short


def _beyond(node: int, op: Op) -> None:
    raise Beyond(node, f"{op.name}: a number beyond the oracle's range (2**(2**26))")


def _reverse(p: Plan, steps: list[Step], prec: int, screen: bool, track: bool, mc: Any,
             values: list[Any], errs: list[Any], nums: list[Any], parts: list[Any],
             pmags: list[Any], perrs: list[Any], kinks: list[int],
             short: dict[int, int]) -> Run | None:
    """Reverse mode: grads[a] += grads[i] * d node_i / d node_a, with bounds."""
    hi = _GHI if screen else _WHI
    munit = numbers.unit(prec)  # in MPFR (for the bounds below FLOOR)
    unit = 2.0 ** (2 - prec) if screen else munit
    n = len(values)
    grads: list[Any] = [None] * n
    gerrs: list[Any] = [0.0] * n
    grads[n - 1] = numbers.ONE
    for i, a, b, _, _, _, _, _ in reversed(steps):
        g = grads[i]
        if g is None:
            continue
        ge = gerrs[i]
        if not g and not ge:
            continue  # an exact zero gradient passes nothing on
        args = (a, b) if b >= 0 else (a,) if i not in short else (short[i],)
        if not track:
            for a, q in zip(args, parts[i], strict=True):
                t = g * q
                old = grads[a]
                grads[a] = t if old is None else old + t
            continue
        ga = abs(float(g)) if screen else abs(g)
        if ga > hi or ge > hi:
            if screen:
                return None
            raise Beyond(i, f"the gradient at node {i} is beyond the oracle's range")
        # this node's bounds in floats, else in MPFR (an exact 0 gradient, as from a - a,
        # underflows nothing: |g| contributes no term)
        floats = screen and type(ge) is float and (ga >= FLOOR or not g)
        for a, q, qm, qe in zip(args, parts[i], pmags[i], perrs[i], strict=True):
            if type(q) is int and not qe:  # an exact 0, 1 or -1
                if not q:
                    continue
                t = g if q == 1 else -g
                te = ge
            else:
                t = g * q
                if floats:
                    # |t| <= ga qm (1 + 2**-51): its rounding is below ga qm unit (a 4 ulps)
                    te = qm * ge + (ga + ge) * qe if qe else qm * ge
                    if t.rc:
                        te += ga * qm * unit
                    if te < FLOOR and (qm and ge or qe or t.rc):  # it may have underflowed
                        te = _term(g, ge, q, qe, t, munit)
                elif screen:
                    te = _term(g, ge, q, qe, t, munit)
                else:
                    te = qm * ge + (ga + ge) * qe if qe else qm * ge
                    if t.rc:
                        te += abs(t) * unit
            old = grads[a]
            if old is None:
                grads[a] = t
                gerrs[a] = te
            else:
                s = grads[a] = old + t
                te += gerrs[a]
                if s.rc:
                    r = (abs(float(s)) if screen else abs(s)) * unit
                    te += r if not screen or r >= FLOOR else abs(s) * munit
                gerrs[a] = te
        if not screen and (mc.underflow or mc.overflow or mc.invalid):
            if mc.overflow or mc.invalid:
                raise Beyond(i, f"a gradient through node {i} is beyond the oracle's range")
            for a in args:
                gerrs[a] += SLACK  # each term: three products and a rounding, each off by TINY
            mc.clear_flags()
    if track:
        for i in p.leaves:
            g, ge = grads[i], gerrs[i]
            if g is not None and (abs(float(g) if screen else g) > hi or ge > hi):
                if screen:
                    return None
                raise Beyond(i, f"the gradient of leaf node {i} is beyond the oracle's range")
    return Run(values, errs, grads, gerrs, kinks, None, prec, p.leaves, screen, nums, parts,
               perrs, short, len(steps) < len(p.steps))


def _term(g: Any, ge: Any, q: Any, qe: Any, t: Any, unit: Any) -> Any:
    """A reverse-mode term's bound, |q| ge + (|g| + ge) qe and t's rounding, in MPFR."""
    te = abs(q) * ge + (abs(g) + ge) * qe
    return te + abs(t) * unit if t.rc else te


def sides(p: Plan, r: Run) -> list[int | None]:
    """For each node of a run, the sign of (exact value - computed value) where the
    run shows it, else None: 0 where the value is exact; inward where an op's
    value sits on the end of its open range (sigmoid computed as 1.0 is exactly
    below 1); else the sign its operands push it, where each is known and the
    op is monotone in it over its error interval (|partial| above its error
    bound), combined with the sign of its own rounding where the row computes its
    value in one MPFR operation (the ternary value) or exactly. The certificate
    uses it where a value lies on a rounding midpoint.
    """
    s: list[int | None] = [0] * len(r.values)
    for step in p.steps:
        i, op = step.node, step.facts.op
        v = r.values[i]
        if v is None:  # a step the run skipped
            s[i] = None
            continue
        if i in r.short:  # exp(log(y)) is y; expm1(log(y)) is y - 1, maybe rounded
            s[i] = s[r.short[i]] if not (step.shift and v.rc) else None
            continue
        if not r.errs[i]:
            continue  # exact
        rng = op.open_range
        if rng is not None and (v == rng[0] or v == rng[1]):
            s[i] = 1 if v == rng[0] else -1
            continue
        side: int | None = 0
        args = (step.a, step.b) if step.b >= 0 else (step.a,)
        for a, q, qe in zip(args, r.parts[i], r.perrs[i] or [0] * len(args), strict=True):
            sa = s[a]
            if sa == 0:
                continue
            if sa is None or not abs(q) > qe:
                side = None
                break
            t = sa if q > 0 else -sa
            if side and side != t:
                side = None
                break
            side = t
        # the sign of its own rounding: none for an exact op (a kink), MPFR's ternary value
        # for one operation; unknown for an eval of several (a ternary value of 0 there
        # may be that of an exact last step: x ** 0.5 as 1 * sqrt(x), or -t)
        kv = 1 if step.facts.fixed is not None else op.rounding_counts(0.0, exact=True)[0]
        own: int | None = 0 if not kv else (0 if not v.rc else -1 if v.rc > 0 else 1) \
            if kv == 1 else None
        if side is None or own is None or (side and own and side != own):
            s[i] = None
        else:
            s[i] = side or own
    return s
