"""check_grads without a framework: the builder, the judge, Values, the search and the
reproducer (PyTorch and JAX have their own test modules)."""

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from planted.catalogue import get

from gradcert.check import (
    CheckError,
    GradientMismatch,
    NotYetSupported,
    OutsideDomain,
    Untraceable,
    around,
    check_grads,
)
from gradcert.check.builder import Builder
from gradcert.check.judge import judge
from gradcert.check.values import trace_values
from gradcert.engine import Value
from gradcert.oracle import exact_graph

# -- the builder ---------------------------------------------------------------


def test_constants_fold_only_when_exact():
    b = Builder()
    assert b.add(2.0, 3.0) == 5.0 and b.mul(0.5, 3.0) == 1.5
    before = len(b)
    third = b.div(1.0, 3.0)  # not exact: kept as nodes, so the oracle computes it exactly
    assert isinstance(third, int) and len(b) == before + 3
    assert [b.ops[i] for i in range(before, before + 3)] == ["leaf", "leaf", "div"]


def test_identities_emit_no_nodes():
    b = Builder()
    x = b.input(2.0)
    n = len(b)
    assert b.mul(x, 1.0) == x and b.add(x, 0.0) == x and b.mul(x, 0.0) == 0.0
    assert b.powc(x, 1.0) == x and b.powc(x, 0.0) == 1.0 and len(b) == n


def test_infinite_constants_follow_ieee():
    b = Builder()
    x = b.input(1.0)
    masked = b.add(x, -math.inf)  # a masked attention score
    assert masked == -math.inf and b.exp(masked) == 0.0


def test_decompositions_are_exact_in_the_oracle():
    b = Builder()
    x = b.input(2.0)
    g, _ = b.graph([(b.sqrt(x), 1.0)])
    ex = exact_graph(g)
    assert ex.value_f64 == math.sqrt(2.0) and ex.grad_f64[0] == math.sqrt(2.0) / 4
    b = Builder()
    x = b.input(1e-3)
    g, _ = b.graph([(b.log1p(x), 1.0)])
    assert exact_graph(g).value_f64 == math.log1p(1e-3)


def test_the_new_rows_are_nodes_of_their_own():
    b = Builder()
    x, y = b.input(0.5), b.input(-1.5)
    out = b.add(b.add(b.erf(x), b.sin(y)), b.add(b.pick(x, y, True), b.abs(y)))
    g, _ = b.graph([(out, 1.0)])
    assert {"erf", "sin", "max", "abs"} <= g.ops_used()
    ex = exact_graph(g)
    assert ex.value_f64 == pytest.approx(math.erf(0.5) + math.sin(-1.5) + 0.5 + 1.5,
                                         rel=1e-15)
    assert ex.grad_f64 == pytest.approx((2 / math.sqrt(math.pi) * math.exp(-0.25) + 1.0,
                                         math.cos(-1.5) - 1.0), rel=1e-15)


def test_a_missing_row_is_named():
    b = Builder()
    with pytest.raises(Untraceable, match="'cbrt'") as e:
        b.emit("cbrt", (b.input(0.5),))
    assert e.value.row == "cbrt"


def test_the_graph_keeps_every_input_first_and_prunes_the_rest():
    b = Builder()
    x, y, z = b.input(1.0), b.input(2.0), b.input(3.0)
    dead = b.log(z)
    out = b.mul(x, x)
    g, new = b.graph([(out, 1.0)])
    assert len(g.leaves) == 3 and dead not in new
    assert exact_graph(g).grad_f64 == (2.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="no output depends"):
        b.graph([(1.0, 1.0)])
    del y


# -- Values ----------------------------------------------------------------------


def test_a_correct_value_function_passes_every_output():
    r = check_grads(lambda x, y: [(x * y).log(), x.relu() * y, (x / y).tanh()], [3.0, 4.0],
                    examples=0)
    assert r.passed and r.checked == 9 and r.cotangents == "every output element"


def test_a_defective_engine_is_caught_with_where_and_by_how_much():
    bad = get("log_eps_guard").load()
    r = check_grads(lambda x: x.log(), [bad(1e-6)], examples=0, raise_on_failure=False)
    assert not r.passed
    m = r.worst
    assert m.what == "gradient" and m.input == 0 and m.expected == 1e6
    assert m.error > m.bound and r.severity["class"] in ("wrong derivative", "inaccurate")
    text = r.message()
    assert "d output / d input 0" in text and "1000000.0" in text


def test_an_intermediate_value_the_oracle_cannot_certify_is_named():
    # (sqrt t)**2 + 2**-52 is a float64 midpoint reached through a square root: no
    # precision certifies its rounding, though the output's is certain
    with pytest.raises(OutsideDomain, match="cannot certify this function's intermediate"):
        check_grads(lambda t: ((t ** 0.5) * (t ** 0.5) + 2.0**-52) * 1e-300 + t, [2.0],
                    examples=0)


def test_failure_raises_an_assertion_error_with_the_message():
    bad = get("tanh_missing_square").load()
    with pytest.raises(GradientMismatch, match="FAILED") as e:
        check_grads(lambda x: x.tanh(), [bad(0.7)], examples=0, reproducer_dir=None)
    assert isinstance(e.value, AssertionError) and not e.value.result.passed


def test_the_value_is_judged_and_can_be_switched_off():
    bad = get("exp_clamped").load()  # exp's input clamped: a wrong value far out
    f = _exp
    r = check_grads(f, [bad(600.0)], examples=0, raise_on_failure=False)
    assert any(m.what == "value" for m in r.mismatches)
    r2 = check_grads(f, [bad(600.0)], examples=0, raise_on_failure=False, value=False)
    assert not any(m.what == "value" for m in r2.mismatches)


def _exp(x):
    return x.exp()


def test_a_near_branch_is_noted():
    # (x + 1e16) - 1e16 is 0.0 in floats, exactly 1.0: relu took the other branch
    r = check_grads(lambda x: ((x + 1e16) - 1e16).relu() + x, [1.0], examples=0)
    assert r.passed and any("branch" in n for n in r.notes)


def test_search_finds_what_the_given_inputs_miss_and_shrinks_it(tmp_path):
    bad = get("relu_leaky").load()  # relu(x) = 0.01 x below 0
    r = check_grads(relu_sum, [bad(1.0), bad(2.0)], raise_on_failure=False,
                    reproducer_dir=tmp_path)
    assert not r.passed
    assert "found by the search" in " ".join(r.notes)
    shrunk = [v.data for v in r.inputs]
    assert shrunk in ([1.0, -1.0], [-1.0, 2.0])  # one given value kept, the other simplest
    run = subprocess.run([sys.executable, str(r.reproducer)], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "FAILED" in run.stdout


def relu_sum(x, y):
    return x.relu() + y.relu()


def test_search_draws_from_a_strategy():
    bad = get("relu_leaky").load()
    r = check_grads(relu_sum, st.tuples(st.floats(-5, 5).map(bad), st.just(bad(1.0))),
                    raise_on_failure=False, reproducer_dir=None, examples=30)
    assert not r.passed and r.inputs[0].data < 0


def test_around_shrinks_to_the_given_values():
    from hypothesis import find

    got = find(around(3.0, 7.0), lambda a: a[1] > 25)
    assert got[0] == 3.0 and 25 < got[1] <= 30  # the other kept, this one as small as may be


@given(st.floats(0.1, 10.0))
def test_inside_a_given_test_the_check_does_not_search(x):
    r = check_grads(lambda v: v.log() * v, [x])
    assert r.passed and r.examples == 1


# -- errors ----------------------------------------------------------------------


def test_order_two_is_named_not_yet():
    with pytest.raises(NotYetSupported, match="not built yet"):
        check_grads(lambda x: x * x, [1.0], order=2)


@pytest.mark.parametrize("bad, match", [
    ((lambda x: x.log(), [-1.0]), "raised ValueError"),
    ((lambda x: x * x, [math.inf]), "finite number"),
    ((lambda x: "text", [1.0]), "not a value computed"),
    ((lambda x: x * 2.0, "x"), "finite number"),
])
def test_bad_input_is_a_clear_error(bad, match):
    with pytest.raises(CheckError, match=match):
        check_grads(*bad, examples=0)


def test_a_constant_function_has_nothing_to_check():
    with pytest.raises(CheckError, match="no output of the function depends"):
        check_grads(lambda x: [Value(2.0)], [1.0], examples=0)


def test_the_judge_uses_the_engine_given():
    t = trace_values(lambda x, y: x * y, [3.0, 4.0], engine=get("mul_grad_own_operand").load())
    assert not judge(t, "f").passed


def test_the_result_is_a_record_in_the_shared_vocabulary():
    import json

    bad = get("log_eps_guard").load()
    r = check_grads(lambda x: x.log(), [bad(1e-6)], examples=0, raise_on_failure=False,
                    reproducer_dir=None)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["outcome"] == "failed" and d["examples"] == 1 and not d["approximate"]
    assert d["severity"]["class"] in ("wrong derivative", "inaccurate")
    assert d["severity"]["ratio"] > 1 and d["worst"]["expected"] == 1e6
    assert "d output / d input 0" in d["failure"]["message"]
    ok = check_grads(lambda x: x.log(), [2.0], examples=0).to_dict()
    assert ok["outcome"] == "passed" and "severity" not in ok


def test_the_reproducer_exits_1_while_the_bug_is_there_and_0_once_fixed(tmp_path):
    import importlib

    module = tmp_path / "userfn_leaky.py"
    buggy = ("from gradcert.engine import Value\n\n\n"
             "class Relu(Value):\n"
             "    def relu(self):\n"
             "        out = Value(max(self.data, 0.0))\n"
             "        out._a, out._da = self, (1.0 if self.data > 0 else SLOPE)\n"
             "        return out\n\n\n"
             "SLOPE = 0.01\n\n\n"
             "def f(x, y):\n"
             "    return x.relu() * 2.0 + y.relu()\n")
    module.write_text(buggy)
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module("userfn_leaky")
        r = check_grads(mod.f, [mod.Relu(-1.0), mod.Relu(2.0)], examples=0,
                        raise_on_failure=False, reproducer_dir=tmp_path / "repro")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("userfn_leaky", None)
    assert not r.passed and r.reproducer.parent == tmp_path / "repro"
    assert "from userfn_leaky import f" in r.reproducer.read_text()
    run = subprocess.run([sys.executable, str(r.reproducer)], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    module.write_text(buggy.replace("SLOPE = 0.01", "SLOPE = 0.0"))
    run = subprocess.run([sys.executable, str(r.reproducer)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED" in run.stdout
