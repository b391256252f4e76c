"""The conformance properties: each one's id, level and one-line meaning.

An id is ``level.name``. The levels, in the order a verdict lists them, go
from single ops up to whole models, with the engine's behaviour at the
edges (depth, size, domain) as its own level. The planted-bug catalogue,
the results document and the verdict table all speak these ids.

>>> PROPERTIES["semantics.second_backward"].level
'semantics'
>>> [p.id for p in by_level("optimizer")]
['optimizer.adam']
"""

from __future__ import annotations

from dataclasses import dataclass

from gradcert.results import LEVELS

__all__ = ["LEVELS", "PROPERTIES", "Property", "by_level", "get"]


@dataclass(frozen=True)
class Property:
    """A property's id (``level.name``), level and what passing it means."""

    id: str
    level: str
    meaning: str


_ROWS = [
    ("ops.values", "every supported op's value at edge-heavy inputs is within the "
                   "tolerance model of the exact value"),
    ("ops.gradients", "every supported op's partial derivatives at edge-heavy inputs are "
                      "within the tolerance model of the exact ones"),
    ("ops.kinks", "relu'(0) is a convention inside the bracket of the one-sided "
                  "derivatives [0, 1] (the one used is reported)"),
    ("graphs.oracle", "value and every leaf gradient of random graphs are within the "
                      "tolerance model of the exact ones"),
    ("graphs.finite_differences", "the gradient of random graphs agrees with directional "
                                  "finite differences of the engine's own forward"),
    ("semantics.fan_out", "a node used by several consumers accumulates the gradient of "
                          "every path"),
    ("semantics.same_operand", "the same node as both operands (x*x, x+x, x-x, x/x) gets "
                               "both partials"),
    ("semantics.second_backward", "a second backward on the same output accumulates, "
                                  "resets to the same gradient, or raises a clear error"),
    ("semantics.zero_grad", "after zero_grad, a new forward and backward from the same "
                            "leaves gives the fresh gradient"),
    ("semantics.fresh_graph", "building and backpropagating an unrelated graph in between "
                              "changes nothing"),
    ("semantics.reuse_after_backward", "a node of a graph already backpropagated, reused "
                                       "in a new graph, passes the new gradient on"),
    ("semantics.equal_values", "distinct nodes with equal values keep distinct gradients"),
    ("semantics.constant_left", "a constant on the left (c + x, c - x, c * x, c / x) "
                                "gives the exact value and derivative"),
    ("robustness.chain_10k", "a chain of 10,000 ops (sum() over 10,000 Values, or "
                             "x0 + x1 + ... without __radd__) backpropagates under "
                             "Python's default settings"),
    ("robustness.deep_chain", "chains up to 100,000 ops backpropagate given a large stack "
                              "and recursion limit (the failing depth is reported, and "
                              "apart the depth reached under default settings)"),
    ("robustness.large_graph", "a 100,000-node random graph runs forward and backward "
                               "correctly within the time bound"),
    ("robustness.domain_edges", "log(0), log(-1), exp overflow and 0 ** -1 raise a clear "
                                "exception or give inf/nan, never a silent finite number"),
    ("robustness.dtype", "the engine computes in the dtype it claims (float64 for a Value "
                         "class, which takes Python floats)"),
    ("optimizer.adam", "an Adam step on the engine's gradients matches the exact Adam step"),
    ("models.mlp", "gradients of an MLP's loss built from the atomic ops match the oracle"),
    ("models.attention", "gradients of a tiny attention block with softmax and cross-entropy "
                         "match the oracle"),
]

PROPERTIES: dict[str, Property] = {
    pid: Property(pid, pid.split(".", 1)[0], meaning) for pid, meaning in _ROWS
}
"""Every property, by id, in verdict order."""


def get(pid: str) -> Property:
    """The property named ``pid``; a clear KeyError listing the known ids otherwise.

    >>> get("graphs.oracle").meaning.startswith("value and every leaf gradient")
    True
    """
    try:
        return PROPERTIES[pid]
    except KeyError:
        raise KeyError(f"unknown property id {pid!r}; known: {', '.join(PROPERTIES)}") from None


def by_level(level: str) -> list[Property]:
    """The properties of one level, in verdict order."""
    if level not in LEVELS:
        raise KeyError(f"unknown level {level!r}; known: {', '.join(LEVELS)}")
    return [p for p in PROPERTIES.values() if p.level == level]
