"""Results made up for the report tests: what no engine gives on demand."""

from __future__ import annotations

from gradcert.results import PropertyResult, Results

__all__ = ["synthetic"]


def synthetic() -> Results:
    """A run with a root cause and a failure it explains (the shared contract of the
    detection work: severity, root_cause, worst), an error near an exact 0 within the
    bound, and a property for every outcome."""
    tanh_fail = {
        "message": "ops.values failed for tanh: every op's value is within the bound\n"
                   "  tanh(0.0039) is 0.003906230131906374; the oracle says "
                   "0.00390623013190634 (78 ulps off, allowed 1.4e-17)\n"
                   "  first wrong node: 1 = tanh(node 0 = 0.00390625)\n"
                   "  graph (2 nodes, 1 leaves):\n    def build(Value):\n"
                   "        x0 = Value(0.00390625)\n        v1 = x0.tanh()\n"
                   "        return [x0], v1\n  target: t; profile: ci; seed: derandomized\n"
                   "  reproducer: rep/reproducers/ops.values-tanh.py",
        "summary": "tanh(0.0039) is 0.003906230131906374; the oracle says "
                   "0.00390623013190634 (78 ulps off, allowed 1.4e-17)",
        "expected": {"value": "0.00390623013190634", "grads": ["0.99998474"]},
        "actual": {"value": "0.003906230131906374", "grads": ["0.99998474"]},
        "bound": {"value": "1.4e-17", "grads": ["6.2e-15"]},
        "code": "def build(Value):\n    x0 = Value(0.00390625)\n    v1 = x0.tanh()\n"
                "    return [x0], v1\n",
        "severity": {"class": "wrong value", "ratio": 2.4e5},
        "worst": {"summary": "tanh(1e-300) is 0.0; the oracle says 1e-300",
                  "inputs": [1e-300], "ratio": 7.1e283},
    }
    fan_fail = {
        "message": "semantics.fan_out failed: a node used twice accumulates\n"
                   "  the value is 0.0078124602638127; the oracle says 0.00781246026381268",
        "summary": "the value is 0.0078124602638127; the oracle says 0.00781246026381268",
        "root_cause": {"op": "tanh", "property": "ops.values",
                       "text": "tanh's value is wrong"},
        "severity": {"class": "wrong value", "ratio": 1.4e1},
    }
    props = [
        PropertyResult("ops.values", "ops", "every op's value is within the bound", "failed",
                       40, failure=tanh_fail, reproducer="rep/reproducers/ops.values-tanh.py",
                       worst={"kind": "value", "op": "tanh", "ulps": 487.0, "rel": 7e-14,
                              "of_bound": 21.0, "inputs": [0.00390625]},
                       notes={"tests": {"tanh": "failed", "log": "passed"}}),
        PropertyResult("ops.gradients", "ops", "derivatives within the bound", "passed", 40,
                       worst={"kind": "grad", "op": "tanh", "ulps": 4.36e18, "rel": 1.0,
                              "of_bound": 0.0021, "inputs": [20.0]}),
        PropertyResult("semantics.fan_out", "semantics", "a node used twice accumulates",
                       "failed", 20, failure=fan_fail),
        PropertyResult("semantics.zero_grad", "semantics", "zero_grad resets", "unsupported",
                       notes={"unsupported": "unsupported: the engine has no zero_grad"}),
        PropertyResult("robustness.chain_10k", "robustness", "a chain backpropagates",
                       "crashed", 0, failure={"message": "the engine host died (SIGSEGV)",
                                              "severity": {"class": "crash"}}),
        PropertyResult("robustness.deep_chain", "robustness", "deep chains", "timeout", 0,
                       failure={"message": "timeout: 10 s of CPU at depth 50,000",
                                "severity": {"class": "hang"}}),
        PropertyResult("robustness.dtype", "robustness", "float64 stays", "error", 0,
                       failure={"message": "the engine raised TypeError: bad operand"}),
        PropertyResult("optimizer.adam", "optimizer", "Adam's step", "not run"),
    ]
    samples = ([{"op": "tanh", "kind": "value", "ulps": u, "rel": u * 1e-16, "of_bound": f,
                 "inputs": [x], "nodes": 2}
                for u, f, x in ((487.0, 21.0, 0.00390625), (2.0, 0.4, 1.0), (0.0, 0.0, 3.0))]
               + [{"op": "tanh", "kind": "grad", "ulps": 4.36e18, "rel": 1.0,
                   "of_bound": 0.0021, "inputs": [20.0], "nodes": 2},
                  {"op": "log", "kind": "grad", "ulps": 9.0, "rel": 1e-15, "of_bound": 0.01,
                   "inputs": [0.5], "nodes": 2},
                  {"op": None, "kind": "grad", "ulps": 3.0, "rel": 3e-16, "of_bound": 0.2,
                   "inputs": [1.0, 2.0], "nodes": 12}])
    return Results("eng:Value", props, engine={"dtype": "float64"}, profile="ci",
                   duration_s=4.0, samples=samples)
