"""The planted-bug catalogue: every planted engine, its defect, what must fail.

Each :class:`Planted` entry names a module of :mod:`.engines` exporting a
micrograd-style ``Value`` class. A defective engine's ``expect`` holds the
property ids of which at least one must fail under the quick profile;
``may_also_fail`` the ones its defect can plausibly break too (advisory:
how far a defect spreads depends on which graphs a property draws). A correct
engine has ``expect == may_also_fail == frozenset()``: it must pass every
property. ``touches`` holds the op-table names whose results the defect
changes (on graphs shallower than the recursion limit, with one backward),
or None when the defect is not confined to ops (fan-out, storage).

Targets are named the way the package was imported, so they work whether
``tests`` is a package on ``sys.path`` (``tests.planted.engines.base:Value``)
or ``tests/`` itself is (``planted.engines.base:Value``).

>>> [e.name for e in CATALOGUE if e.correct][:2]
['base', 'correct_torch_like']
>>> get("log_clamped").target.endswith("planted.engines.log_clamped:Value")
True
>>> get("base").load()(2.0).data
2.0
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["ALL_PROPERTIES", "CATALOGUE", "Planted", "correct", "defective", "get"]

ALL_PROPERTIES = frozenset({
    "ops.values", "ops.gradients", "ops.kinks",
    "graphs.oracle", "graphs.finite_differences",
    "semantics.fan_out", "semantics.same_operand", "semantics.second_backward",
    "semantics.zero_grad", "semantics.fresh_graph", "semantics.reuse_after_backward",
    "semantics.equal_values",
    "semantics.constant_left",
    "robustness.chain_10k", "robustness.deep_chain", "robustness.large_graph",
    "robustness.domain_edges", "robustness.dtype",
    "optimizer.adam",
    "models.mlp", "models.attention",
})
"""The property ids of the conformance suite (contracts.md)."""

# A wrong value or derivative of an op can reach every property that computes
# numbers on graphs; only the value checks, the domain edges and the dtype
# probe stay out of a gradient-only defect's reach.
_GRADIENT_REACH = ALL_PROPERTIES - {"ops.values", "robustness.domain_edges", "robustness.dtype"}
_VALUE_REACH = ALL_PROPERTIES - {"robustness.dtype"}


@dataclass(frozen=True)
class Planted:
    """One planted engine: its module, what it does, what must fail."""

    name: str  # module name under .engines
    description: str  # the defect, or how a correct engine rounds
    expect: frozenset[str] = frozenset()
    may_also_fail: frozenset[str] = frozenset()
    touches: frozenset[str] | None = frozenset()

    @property
    def correct(self) -> bool:
        return not self.expect

    @property
    def module(self) -> str:
        return f"{__package__}.engines.{self.name}"

    @property
    def target(self) -> str:
        """``module:Value``, as ``gradcert certify`` takes it."""
        return f"{self.module}:Value"

    def load(self) -> Any:
        """The engine's ``Value`` class."""
        return importlib.import_module(self.module).Value


def _ok(name: str, how: str) -> Planted:
    return Planted(name, how)


def _bad(name: str, defect: str, expect: set[str], reach: frozenset[str] | set[str],
         touches: set[str] | None) -> Planted:
    expect_ = frozenset(expect)
    return Planted(name, defect, expect_, frozenset(reach) - expect_,
                   None if touches is None else frozenset(touches))


CATALOGUE: tuple[Planted, ...] = (
    # correct engines: each rounds differently from the others, all validly
    _ok("base", "micrograd-style, iterative sort, derivatives without cancellation"),
    _ok("correct_torch_like", "tanh' = 1 - t*t and sigmoid' = s(1 - s) from the output"),
    _ok("correct_reciprocal", "a / b as a * (1 / b), d/db = -(a/b) * (1/b)"),
    _ok("correct_kahn_order", "breadth-first topological order: fan-out sums reordered"),
    # one defect each
    _bad("grad_assigned", "gradient assigned (=) instead of accumulated (+=)",
         {"semantics.fan_out", "semantics.same_operand"}, _GRADIENT_REACH, None),
    _bad("pow_forgot_minus_one", "d(x**c)/dx = c * x**c",
         {"ops.gradients"}, _GRADIENT_REACH, {"powc"}),
    _bad("pow_wrong_coefficient", "d(x**c)/dx = (c - 1) * x**(c - 1)",
         {"ops.gradients"}, _GRADIENT_REACH, {"powc"}),
    _bad("log_grad_squared", "d(log x)/dx = 1 / x**2",
         {"ops.gradients"}, _GRADIENT_REACH, {"log"}),
    _bad("log_eps_guard", "d(log x)/dx = 1 / (x + 1e-8)",
         {"ops.gradients"}, _GRADIENT_REACH, {"log"}),
    _bad("log_clamped", "log(max(x, 1e-10)): log(-1) = -23.03 silently",
         {"robustness.domain_edges"}, _VALUE_REACH, {"log"}),
    _bad("exp_grad_from_input", "d(exp x)/dx = x",
         {"ops.gradients"}, _GRADIENT_REACH, {"exp"}),
    _bad("exp_clamped", "exp(min(x, 88)): exp(100) = exp(88), exp(1000) finite",
         {"ops.values", "robustness.domain_edges"}, _VALUE_REACH, {"exp"}),
    _bad("relu_grad_ge_zero", "relu' = 1 for every x <= 0 (out >= 0 tested)",
         {"ops.gradients"}, _GRADIENT_REACH, {"relu"}),
    _bad("relu_leaky", "relu(x) = 0.01 x below 0 (leaky relu under relu's name)",
         {"ops.values", "ops.gradients"}, _VALUE_REACH, {"relu"}),
    _bad("tanh_missing_square", "tanh' = 1 - tanh(x)",
         {"ops.gradients"}, _GRADIENT_REACH, {"tanh"}),
    _bad("tanh_exp_formula", "tanh = (e^2x - 1)/(e^2x + 1): cancels near 0, overflows > 354",
         {"ops.values"}, _VALUE_REACH, {"tanh"}),
    _bad("sigmoid_grad_float32", "sigmoid' = s(1 - s) with s rounded to float32",
         {"ops.gradients"}, _GRADIENT_REACH, {"sigmoid"}),
    _bad("rsub_reversed", "c - x computes x - c (__rsub__ reversed)",
         {"semantics.constant_left", "ops.values"}, _VALUE_REACH, {"rsubc"}),
    _bad("rdiv_reversed", "c / x computes x / c (__rtruediv__ reversed)",
         {"semantics.constant_left", "ops.values"}, _VALUE_REACH, {"rdivc"}),
    _bad("div_denominator_sign", "d(a/b)/db = +a / b**2",
         {"ops.gradients"}, _GRADIENT_REACH, {"div", "rdivc"}),
    _bad("div_eps_guard", "a / (b + 1e-12): quotients off, x / 0 finite",
         {"ops.values", "robustness.domain_edges"}, _VALUE_REACH, {"div", "divc", "rdivc"}),
    _bad("sub_grad_sign", "d(a - b)/db = +1",
         {"ops.gradients"}, _GRADIENT_REACH, {"sub", "rsubc"}),
    _bad("mul_grad_own_operand", "d(a * b)/da = a",
         {"ops.gradients"}, _GRADIENT_REACH, {"mul", "mulc", "rmulc", "neg"}),
    _bad("topo_no_visited", "recursive topological sort without a visited set",
         {"semantics.fan_out"}, _GRADIENT_REACH, None),
    _bad("topo_recursive", "recursive topological sort: RecursionError past depth ~1000",
         {"robustness.chain_10k"}, {"robustness.deep_chain", "robustness.large_graph"},
         set()),
    _bad("stale_intermediate_grads", "inner gradients not reset between backward calls",
         {"semantics.second_backward"}, {"semantics.zero_grad", "optimizer.adam"}, set()),
    _bad("float32_storage", "values and gradients stored in float32",
         {"ops.values", "ops.gradients", "robustness.dtype"}, ALL_PROPERTIES, None),
    # edge bugs random draws find on some seeds only; the sweep finds them on every seed
    _bad("pow_zero_base_grad", "d(x**c)/dx = c * x ** (c - 1): 0.0 ** 0 raises",
         {"ops.gradients"}, _VALUE_REACH, {"powc"}),
    _bad("div_grad_y_squared", "d(a/b)/db = -a / (b * b): b * b underflows at b = 1e-200",
         {"ops.gradients"}, _VALUE_REACH, {"div", "divc", "rdivc"}),
    _bad("sigmoid_exp_overflow", "sigmoid = 1 / (1 + exp(-x)): raises below x = -709.78",
         {"ops.values"}, _VALUE_REACH, {"sigmoid"}),
    _bad("visited_never_cleared", "a visited flag set by the sort and never cleared",
         {"semantics.reuse_after_backward"},
         {"semantics.second_backward", "optimizer.adam", "semantics.zero_grad"}, set()),
    _bad("no_radd_recursive", "no __radd__, and a recursive topological sort",
         {"robustness.chain_10k"}, {"robustness.deep_chain", "robustness.large_graph"},
         {"raddc"}),
    _bad("equal_values_merged", "__eq__/__hash__ by data: equal-valued nodes merged",
         {"semantics.equal_values"}, _GRADIENT_REACH, None),
)


NOTES_ONLY = frozenset({"topo_recursive_c_stack"})
"""Engines whose defect shows as a note of a passing property, not as a failure (a
sort that overflows a plain script's stack: robustness.deep_chain's default-settings
depth), each tested on its own (tests/test_certify.py)."""


def get(name: str) -> Planted:
    """The entry named ``name``; KeyError listing the names otherwise."""
    for e in CATALOGUE:
        if e.name == name:
            return e
    raise KeyError(f"no planted engine {name!r}; known: {', '.join(e.name for e in CATALOGUE)}")


def correct() -> list[Planted]:
    """The correct engines: each must pass every property."""
    return [e for e in CATALOGUE if e.correct]


def defective() -> list[Planted]:
    """The defective engines: each must fail some property of its ``expect``."""
    return [e for e in CATALOGUE if not e.correct]
