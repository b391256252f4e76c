"""The adapter protocol, the built-in adapters, probing, and loading targets."""

import importlib.metadata
import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcert.adapters import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    Adapter,
    Capabilities,
    EngineError,
    FunctionalAdapter,
    GenericAdapter,
    TargetError,
    Unsupported,
    load_target,
    probe,
    registry,
    run_graph,
)
from gradcert.adapters.base import ALL_OPS
from gradcert.engine import Value
from gradcert.graph import Graph, Node, trace
from gradcert.ops import OPS

NEEDS = {"micrograd": "micrograd.engine", "torch": "torch", "jax": "jax",
         "autograd": "autograd"}


@pytest.fixture(scope="module", params=sorted(BUILTINS))
def adapter(request):
    if request.param in NEEDS:
        pytest.importorskip(NEEDS[request.param])
    return load_target(request.param)


# Hand graphs: every op once, fan-out and x * x, and one for engines with only
# + - * / ** relu. Inputs keep every op in its domain and away from kinks.
def every_op(x, y):
    return ((x * y).log() + (x - y).exp() * 0.5 - (3.0 - x) / y
            + (x / 2.0 + 1.0).tanh() * (-y).sigmoid() + (x - 0.25).relu()
            + 2.0 / x ** 3.0 + (1.0 + y) - 1.5 + 4.0 * x)


def fan_out(x):
    s = x * x
    return s * s + s / (x + 1.0)


def arithmetic(x, y):
    return (x * y - y / x) ** 2.0 + (2.0 - x).relu() * 3.0 + (-x) / 4.0 + 1.0 / y


HAND = [(every_op, [1.3, 0.7]), (fan_out, [0.9]), (arithmetic, [1.3, 0.7]),
        (arithmetic, [2.5, -1.25])]


def reference(f, xs):
    """Value and gradients from gradcert's engine, used directly (no adapter)."""
    leaves = [Value(x) for x in xs]
    out = f(*leaves)
    out.backward()
    return out.data, [v.grad for v in leaves]


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-13)


@pytest.mark.parametrize("f, xs", HAND, ids=lambda p: getattr(p, "__name__", ""))
def test_builtin_adapters_agree_with_the_engine(adapter, f, xs):
    graph = trace(f, xs)
    if adapter.capabilities().missing(graph):
        with pytest.raises(Unsupported, match="does not support"):
            run_graph(adapter, graph)
        return
    run = run_graph(adapter, graph)
    value, grads = reference(f, xs)
    assert close(run.value, value), (adapter.name, run.value, value)
    assert len(run.grads) == len(xs)
    for got, want in zip(run.grads, grads, strict=True):
        assert close(got, want), (adapter.name, run.grads, grads)


@settings(max_examples=15, deadline=None)
@given(x=st.floats(0.5, 3.0), y=st.floats(0.5, 3.0))
def test_builtin_adapters_agree_across_inputs(adapter, x, y):
    f = every_op if adapter.capabilities().ops == ALL_OPS else arithmetic
    run = run_graph(adapter, trace(f, [x, y]))
    value, grads = reference(f, [x, y])
    assert close(run.value, value)
    assert all(close(a, b) for a, b in zip(run.grads, grads, strict=True))


def test_the_reference_adapter_is_exactly_the_engine():
    run = run_graph(load_target(None), trace(every_op, [1.3, 0.7]))
    assert (run.value, list(run.grads)) == reference(every_op, [1.3, 0.7])


def test_leaf_only_graph_and_unused_leaf(adapter):
    # the output is a leaf; and a leaf the output does not depend on has gradient 0
    assert run_graph(adapter, Graph((Node.leaf(2.5),))).grads == (1.0,)
    g = Graph((Node.leaf(2.0), Node.leaf(5.0), Node("mulc", (1,), 3.0)))
    run = run_graph(adapter, g)
    assert (run.value, run.grads) == (15.0, (0.0, 3.0))


def test_relu_at_zero_is_zero_for_every_builtin(adapter):
    # the convention each adapter declares in its notes is the one it computes
    run = run_graph(adapter, trace(lambda x: x.relu(), [0.0]))
    assert run.grads == (0.0,)
    assert adapter.capabilities().notes["relu'(0)"].startswith("0.0")


@pytest.mark.parametrize("name", ["torch", "micrograd", "gradcert"])
def test_every_run_builds_a_fresh_graph(name):
    pytest.importorskip(NEEDS.get(name, "gradcert"))
    a = load_target(name)
    graph = trace(arithmetic, [1.3, 0.7])
    first, second = run_graph(a, graph), run_graph(a, graph)
    assert (first.value, first.grads) == (second.value, second.grads)
    assert not set(map(id, first.handles)) & set(map(id, second.handles))


@pytest.mark.parametrize("name", ["torch", "gradcert"])
def test_second_backward_accumulates_and_zero_grad_resets(name):
    pytest.importorskip(NEEDS.get(name, "gradcert"))
    a = load_target(name)
    run = run_graph(a, trace(fan_out, [0.9]))
    a.backward(run.handles[-1])
    assert a.grad(run.leaves[0]) == 2 * run.grads[0]
    a.zero_grad(run.leaves)
    assert a.grad(run.leaves[0]) == 0.0


# the functions a micrograd-style class rarely has
NEW_FUNCTIONS = {"abs", "max", "min", "sqrt", "log1p", "expm1", "erf", "sin", "cos"}


def test_micrograd_capabilities_are_exactly_what_it_has():
    pytest.importorskip("micrograd.engine")
    caps = load_target("micrograd").capabilities()
    # ** takes a number exponent only (an assert): x ** y of two Values is unsupported
    assert caps.unsupported == {"log", "exp", "tanh", "sigmoid", "pow"} | NEW_FUNCTIONS
    assert "takes a number" in caps.notes["pow"]
    assert caps.dtype == "float64" and not caps.has_zero_grad
    assert "no attribute 'log'" in caps.notes["log"]
    with pytest.raises(Unsupported):
        load_target("micrograd").zero_grad([])


@pytest.mark.parametrize("name", ["jax", "autograd"])
def test_functional_adapters_have_no_handles(name):
    pytest.importorskip(name)
    a = load_target(name)
    assert a.capabilities().functional
    with pytest.raises(Unsupported, match="functional"):
        a.leaf(1.0)
    with pytest.raises(Unsupported):
        a.zero_grad([])


@pytest.mark.timeout(120)  # a guard: with one array of leaves jax took ~30 s per 1,000
@pytest.mark.parametrize("name", ["jax", "autograd"])
def test_functional_adapters_differentiate_wide_sums(name):
    pytest.importorskip(name)
    n = 3000
    run = run_graph(load_target(name), trace(lambda *xs: sum(xs), [0.5] * n))
    assert run.value == 0.5 * n and run.grads == (1.0,) * n


# -- reproducers ---------------------------------------------------------------


@pytest.mark.parametrize("name", [*sorted(BUILTINS), "gradcert.engine:Value"])
def test_reproducer_gives_the_adapters_numbers_bit_for_bit(name, tmp_path):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    a = load_target(name)
    f = every_op if a.capabilities().ops == ALL_OPS else arithmetic
    graph = trace(f, [1.3, 0.7])
    script = tmp_path / "repro.py"
    script.write_text(a.reproducer(graph))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    run = run_graph(a, graph)
    assert got == {"value": run.value, "grads": list(run.grads)}
    # it uses only the engine under test
    assert ("gradcert" in script.read_text()) == name.startswith("gradcert")


# -- the generic adapter and probing -------------------------------------------


class Mini:
    """A minimal micrograd-style Value: + - * / ** relu, recursive backward."""

    def __init__(self, data, children=(), local=()):
        self.data, self.grad = data, 0.0
        self._children, self._local = children, local

    def _wrap(self, o):
        return o if isinstance(o, Mini) else type(self)(o)

    def __add__(self, o):
        o = self._wrap(o)
        return type(self)(self.data + o.data, (self, o), (1.0, 1.0))

    def __mul__(self, o):
        o = self._wrap(o)
        return type(self)(self.data * o.data, (self, o), (o.data, self.data))

    def __pow__(self, c):
        assert isinstance(c, (int, float))
        return type(self)(self.data ** c, (self,), (c * self.data ** (c - 1),))

    def relu(self):
        return type(self)(max(self.data, 0.0), (self,), (float(self.data > 0),))

    def __neg__(self): return self * -1.0
    def __radd__(self, o): return self + o
    def __sub__(self, o): return self + (-o)
    def __rsub__(self, o): return -self + o
    def __rmul__(self, o): return self * o
    def __truediv__(self, o): return self * o ** -1.0
    def __rtruediv__(self, o): return self ** -1.0 * o

    def backward(self):
        order, seen = [], set()

        def visit(v):
            if id(v) not in seen:
                seen.add(id(v))
                for c in v._children:
                    visit(c)
                order.append(v)
        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            for c, d in zip(v._children, v._local, strict=True):
                c.grad += d * v.grad


class MiniFull(Mini):
    """Mini with log, exp and tanh."""

    def log(self): return type(self)(math.log(self.data), (self,), (1 / self.data,))
    def exp(self): return type(self)(math.exp(self.data), (self,), (math.exp(self.data),))
    def tanh(self):
        t = math.tanh(self.data)
        return type(self)(t, (self,), (1 - t * t,))


def test_probing_finds_what_the_class_has():
    caps = GenericAdapter(Mini).capabilities()
    assert caps.unsupported == {"log", "exp", "tanh", "sigmoid", "pow"} | NEW_FUNCTIONS
    assert caps.dtype == "float64" and not caps.has_zero_grad
    full = GenericAdapter(MiniFull).capabilities()
    assert full.unsupported == {"sigmoid", "pow"} | NEW_FUNCTIONS


def test_generic_adapter_runs_the_ops_it_found():
    a = GenericAdapter(MiniFull)
    f = lambda x, y: (x * y).log() + (x - y).exp() / y + (x / 2.0).tanh()  # noqa: E731
    run = run_graph(a, trace(f, [1.3, 0.7]))
    value, grads = reference(f, [1.3, 0.7])
    assert close(run.value, value) and all(map(close, run.grads, grads))
    with pytest.raises(Unsupported, match="sigmoid"):
        run_graph(a, trace(lambda x: x.sigmoid(), [1.0]))


def test_an_op_is_unsupported_only_when_the_class_lacks_it():
    class Declines(MiniFull):
        def log(self):
            raise NotImplementedError("no log here")

        def __rtruediv__(self, o):
            return NotImplemented

    caps = probe(Declines)
    assert not {"log", "rdivc", "sigmoid"} & caps.ops and "exp" in caps.ops
    assert caps.notes["log"] == "log raises NotImplementedError: no log here"
    assert caps.notes["rdivc"] == "Declines.__rtruediv__ returns NotImplemented for a float"
    assert caps.notes["sigmoid"] == "Declines has no attribute 'sigmoid'"


def test_an_op_that_exists_but_fails_is_supported_with_the_reason():
    class PickyLog(MiniFull):
        def log(self):
            if self.data == 2.0:
                raise ValueError("no log at 2")
            return super().log()

    class BrokenLog(MiniFull):
        def log(self):
            raise AttributeError("log is not implemented")

        def tanh(self):
            out = super().tanh()
            out.data = None
            return out

        def exp(self):
            return 2.0

    assert "log" in probe(PickyLog).ops and "log" not in probe(PickyLog).notes
    broken = probe(BrokenLog)
    assert {"log", "tanh", "exp"} <= broken.ops  # certification shows the failure, not hides it
    assert broken.notes["log"] == ("fails at every probe point: AttributeError: log is not "
                                   "implemented")
    assert "value (.data) is not a number: None" in broken.notes["tanh"]
    assert "exp returned 2.0 (float), not a BrokenLog" in broken.notes["exp"]


def test_a_probe_that_recurses_forever_is_caught():
    class Recurses(MiniFull):
        def tanh(self):
            return self.tanh()

    caps = probe(Recurses)
    assert "RecursionError" in caps.notes["tanh"]


def test_float32_data_is_detected():
    np = pytest.importorskip("numpy")

    class F32(Mini):
        def __init__(self, data, children=(), local=()):
            super().__init__(np.float32(data), children, local)

    caps = probe(F32)
    assert caps.dtype == "float32" and "float32" in caps.notes["dtype"]
    assert probe(Mini).dtype == "float64" and "dtype" not in probe(Mini).notes


def test_float32_rounding_without_numpy_is_detected():
    import struct

    class Rounds(Mini):
        def __init__(self, data, children=(), local=()):
            data = struct.unpack("f", struct.pack("f", data))[0]
            super().__init__(data, children, local)

    caps = probe(Rounds)
    assert caps.dtype == "float32"
    assert caps.notes["dtype"] == "Value(1/3).data is 1/3 rounded to float32"


def test_zero_grad_is_detected_and_used():
    class WithZero(Mini):
        def zero_grad(self):
            self.grad = 0.0

    a = GenericAdapter(WithZero)
    assert a.capabilities().has_zero_grad
    run = run_graph(a, trace(lambda x: x * 3.0, [1.0]))
    a.zero_grad(run.leaves)
    assert a.grad(run.leaves[0]) == 0.0
    with pytest.raises(Unsupported, match="zero_grad"):
        GenericAdapter(Mini).zero_grad([])


def test_a_value_that_is_not_a_number_is_an_engine_error():
    class Stringy(Mini):
        def relu(self):
            return Stringy("zero", (self,), (0.0,))

    a = GenericAdapter(Stringy, capabilities=Capabilities(frozenset({"relu", "mulc"})))
    with pytest.raises(EngineError) as e:  # the string flows on: mulc raises
        run_graph(a, trace(lambda x: x.relu() * 2.0, [1.0]))
    assert (e.value.node, e.value.op) == (2, "mulc")
    assert isinstance(e.value.original, TypeError)
    with pytest.raises(EngineError) as e:
        run_graph(a, trace(lambda x: x.relu(), [1.0]))
    assert e.value.node == 1 and "not a number: 'zero' (str)" in str(e.value)


def test_engine_exceptions_name_the_node_and_op():
    g = trace(lambda x: (x - 2.0).log(), [1.0])
    with pytest.raises(EngineError) as e:
        run_graph(load_target("gradcert"), g)
    assert (e.value.node, e.value.op) == (2, "log")
    assert isinstance(e.value.original, ValueError)
    assert str(e.value).startswith("node 2 (log): the engine raised ValueError: log(-1.0)")

    class BadBackward(Mini):
        def backward(self):
            raise RuntimeError("boom")

    with pytest.raises(EngineError, match=r"node 1 \(backward\).*RuntimeError: boom"):
        run_graph(GenericAdapter(BadBackward), trace(lambda x: x * 2.0, [1.0]))


def test_an_op_returning_a_foreign_object_is_an_engine_error():
    class Foreign(Mini):
        def __mul__(self, o):
            return 42.0

    a = GenericAdapter(Foreign, capabilities=Capabilities(frozenset({"mulc"})))
    with pytest.raises(EngineError, match=r"node 1 \(mulc\): mulc returned 42.0 \(float\)"):
        run_graph(a, trace(lambda x: x * 2.0, [1.0]))


class Floats(FunctionalAdapter):
    """A functional adapter over plain floats whose log raises; gradients all 0."""

    name = "floats"

    def capabilities(self):
        return Capabilities(ALL_OPS, functional=True)

    def fns(self):
        def log(x):
            raise ValueError(f"no log of {x}")
        return {**{n: op.apply for n, op in OPS.items()}, "log": log, "exp": lambda x: "e"}

    def value_and_grad(self, f, xs):
        return f(xs), [0.0] * len(xs)


def test_functional_engine_errors_name_the_node():
    with pytest.raises(EngineError) as e:
        run_graph(Floats(), trace(lambda x: (x * 2.0).log(), [1.0]))
    assert (e.value.node, e.value.op) == (2, "log")
    assert str(e.value) == "node 2 (log): the engine raised ValueError: no log of 2.0"
    with pytest.raises(EngineError, match=r"node 1 \(read\): the engine's value is not a "
                                          r"number: 'e' \(str\)"):
        run_graph(Floats(), trace(lambda x: x.exp(), [1.0]))
    run = run_graph(Floats(), trace(lambda x: x * 3.0, [1.0]))
    assert (run.value, run.grads, run.handles) == (3.0, (0.0,), ())


def test_capabilities_reject_unknown_ops_and_dtypes():
    with pytest.raises(ValueError, match="unknown ops"):
        Capabilities(frozenset({"matmul"}))
    with pytest.raises(ValueError, match="dtype"):
        Capabilities(frozenset(), dtype="float16")


# -- loading targets -------------------------------------------------------------

TOY = """
from gradcert.adapters import Adapter
from gradcert.engine import Value as Scalar


class Box:
    Value = Scalar


class Fails(Adapter):
    def __init__(self):
        raise OSError("no device")
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """An importable module ``gradcert_toy_engine`` with a Value class and a broken Adapter."""
    (tmp_path / "gradcert_toy_engine.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "gradcert_toy_engine"
    sys.modules.pop("gradcert_toy_engine", None)


def test_load_target_names(toy):
    assert load_target(None).name == "gradcert"
    a = load_target(f"{toy}:Scalar")
    assert isinstance(a, GenericAdapter) and a.cls is Value
    assert a.target == f"{toy}:Scalar" and a.name == toy
    assert a.import_line == f"from {toy} import Scalar as Value"
    nested = load_target(f"{toy}:Box.Value")
    assert nested.cls is Value and nested.import_line == f"from {toy} import Box\nValue = Box.Value"
    assert load_target("gradcert.adapters.reference:ReferenceAdapter").name == "gradcert"
    ready = load_target("gradcert")
    assert load_target(ready) is ready


def test_load_target_missing_module():
    with pytest.raises(TargetError) as e:
        load_target("no_such_pkg.engine:Value")
    assert str(e.value) == ("no_such_pkg.engine:Value: cannot import module "
                            "'no_such_pkg.engine' (ModuleNotFoundError: "
                            "No module named 'no_such_pkg')")


def test_load_target_missing_attribute():
    with pytest.raises(TargetError, match=r"^gradcert.engine:Valu: 'gradcert.engine' has no "
                                          r"attribute 'Valu'; expected an Adapter"):
        load_target("gradcert.engine:Valu")


@pytest.mark.parametrize("target, problem", [
    ("math:pi", "math:pi is a float, not an engine: expected an Adapter"),
    ("math:sqrt", "math:sqrt is a builtin_function_or_method, not an engine"),
    ("builtins:dict", "builtins:dict: calling dict(2.0) raised TypeError"),
    ("fractions:Fraction", "fractions:Fraction: Fraction(2.0) has no .data, .grad, "
                           ".backward(); expected an Adapter"),
])
def test_load_target_not_an_engine(target, problem):
    with pytest.raises(TargetError) as e:
        load_target(target)
    assert str(e.value).startswith(problem)
    assert ".data, .grad and .backward()" in str(e.value)


def test_load_target_unknown_name():
    with pytest.raises(TargetError) as e:
        load_target("mypkg.engine")
    msg = str(e.value)
    assert msg.startswith("'mypkg.engine' is not a built-in adapter (autograd, gradcert, jax, "
                          "micrograd, torch) nor a registered 'gradcert.adapters' entry point (")
    assert "use module:attr, e.g. 'mypkg.engine:Value'" in msg
    for bad in ["", ":Value", "mod:", 3]:
        with pytest.raises(TargetError):
            load_target(bad)


def fake_entry_points(monkeypatch, **eps):
    found = [importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP)
             for name, value in eps.items()]
    seen = []

    def entry_points(group=None):
        seen.append(group)
        return [ep for ep in found if ep.group == group]

    monkeypatch.setattr(registry.importlib.metadata, "entry_points", entry_points)
    return seen


def test_entry_points_are_found(monkeypatch, toy):
    seen = fake_entry_points(monkeypatch, toy=f"{toy}:Scalar",
                             ref="gradcert.adapters.reference:ReferenceAdapter",
                             broken="no_such_pkg:Adapter")
    toy_adapter = load_target("toy")
    assert seen and set(seen) == {ENTRY_POINT_GROUP}
    assert isinstance(toy_adapter, GenericAdapter) and toy_adapter.cls is Value
    assert toy_adapter.target == "toy"
    assert toy_adapter.import_line == "from gradcert_toy_engine import Scalar as Value"
    assert isinstance(load_target("ref"), Adapter)
    with pytest.raises(TargetError, match=r"entry point \(broken, ref, toy\)"):
        load_target("nothing")
    with pytest.raises(TargetError, match=r"^broken: the entry point 'no_such_pkg:Adapter' .* "
                                          r"failed to load: ModuleNotFoundError"):
        load_target("broken")


def test_an_adapter_class_that_fails_to_start_is_a_target_error(toy):
    with pytest.raises(TargetError, match=r"creating the adapter Fails\(\) raised OSError"):
        load_target(f"{toy}:Fails")


def test_op_table_is_covered_by_the_reference_adapter():
    assert load_target("gradcert").capabilities().ops == frozenset(OPS)


@pytest.mark.parametrize("name", ["torch", "gradcert"])
def test_adam_steps_the_leaves(name):
    pytest.importorskip(NEEDS.get(name, "gradcert"))
    a = load_target(name)
    assert a.capabilities().has_adam
    x = a.leaf(1.0)
    step = a.adam([x], lr=0.1)
    a.backward(a.apply("mul", [x, x], None))
    step()
    # Adam's first step moves each parameter by lr * g / (|g| + eps'): 1 - 0.1
    assert math.isclose(a.value(x), 0.9, rel_tol=1e-8)


def test_engines_without_adam_say_so():
    with pytest.raises(Unsupported, match="no Adam"):
        GenericAdapter(Mini).adam([])


@pytest.mark.parametrize("name, module", [("torch", "torch"), ("jax", "jax"),
                                          ("autograd", "autograd"),
                                          ("micrograd", "micrograd.engine")])
def test_a_builtin_whose_framework_is_missing_is_a_target_error(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(TargetError, match=rf"^{name}: cannot import {module}.*install"):
        load_target(name)


def test_autograd_without_scipy_lacks_only_sigmoid_and_erf(monkeypatch):
    pytest.importorskip("autograd")
    monkeypatch.setitem(sys.modules, "autograd.scipy.special", None)
    caps = load_target("autograd").capabilities()
    assert caps.unsupported == {"sigmoid", "erf"} and "scipy" in caps.notes["sigmoid"]


@pytest.mark.parametrize("name", ["torch", "gradcert"])
def test_adam_step_continues_one_optimizer(name):
    from gradcert.engine import adam_update

    pytest.importorskip(NEEDS.get(name, "gradcert"))
    a = load_target(name)
    x = a.leaf(1.5)
    p, m, v = 1.5, 0.0, 0.0
    for t in (1, 2, 3):
        a.backward(a.apply("powc", [x], 3.0))
        g = a.grad(x)
        a.adam_step([x], step=t, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
        a.zero_grad([x])
        p, m, v = adam_update(p, g, m, v, t, lr=0.1)
        # the moments carry over: a fresh optimizer at each step would give another p
        assert math.isclose(a.value(x), p, rel_tol=1e-14), (t, a.value(x), p)
    with pytest.raises(Unsupported):
        GenericAdapter(Mini).adam_step([], step=1)
