"""check_grads on PyTorch: the catalogue of custom Functions (each bug found, each correct
version passing), PyTorch's own ops with no false alarm, and what cannot be traced."""

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
F = torch.nn.functional

from user_functions import torch_fns  # noqa: E402

from gradcert.check import (  # noqa: E402
    CheckError,
    GradientMismatch,
    Untraceable,
    check_grads,
)

pytestmark = pytest.mark.slow  # check_grads over PyTorch's ops and the catalogue


def _x(*shape, seed=0, low=-2.0, high=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * (high - low) + low).to(dtype)


# -- the catalogue -----------------------------------------------------------------


@pytest.mark.parametrize("name, correct, buggy, inputs, search", torch_fns.CATALOGUE,
                         ids=[c[0] for c in torch_fns.CATALOGUE])
def test_each_correct_function_passes(name, correct, buggy, inputs, search):
    r = check_grads(correct, inputs(), examples=8)
    assert r.passed and r.checked > 0


@pytest.mark.parametrize("name, correct, buggy, inputs, search", torch_fns.CATALOGUE,
                         ids=[c[0] for c in torch_fns.CATALOGUE])
def test_each_bug_is_found(name, correct, buggy, inputs, search, tmp_path):
    at_given = check_grads(buggy, inputs(), examples=0, raise_on_failure=False,
                           reproducer_dir=None)
    assert at_given.passed == search  # a bug away from the inputs needs the search
    r = check_grads(buggy, inputs(), examples=16, raise_on_failure=False,
                    reproducer_dir=tmp_path)
    assert not r.passed
    worst = r.worst
    assert worst.what == "gradient" and worst.error > worst.bound
    assert r.reproducer is not None and r.reproducer.exists()


def test_the_threshold_bug_is_shrunk_to_one_element_above_20():
    r = check_grads(torch_fns.SoftplusThresholdBug.apply, (_x(6, seed=2),), examples=16,
                    raise_on_failure=False, reproducer_dir=None)
    given = _x(6, seed=2)
    shrunk = r.inputs[0]
    changed = (shrunk != given).nonzero().flatten().tolist()
    assert len(changed) == 1 and shrunk[changed[0]] > 20
    assert r.worst.expected == 1.0 and r.worst.actual == 0.0
    assert r.worst.index == (changed[0],)


def test_the_reproducer_imports_the_function_and_exits_1(tmp_path):
    r = check_grads(torch_fns.AddBiasOneRow.apply, (_x(3, 4), _x(4, seed=1)), examples=0,
                    raise_on_failure=False, reproducer_dir=tmp_path)
    text = r.reproducer.read_text()
    assert "from user_functions.torch_fns import AddBiasOneRow" in text
    assert "f = AddBiasOneRow.apply" in text
    run = subprocess.run([sys.executable, str(r.reproducer)], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "FAILED" in run.stdout and "/ d input 1 [" in run.stdout  # the bias's gradient


def test_the_failure_message_names_input_output_numbers_and_reproducer(tmp_path):
    with pytest.raises(GradientMismatch) as e:
        check_grads(torch_fns.LogSumExpF32Leak.apply, (_x(3, 5, seed=1),), examples=0,
                    reproducer_dir=tmp_path)
    text = str(e.value)
    assert "d output [" in text and "/ d input 0 [" in text
    assert "exact" in text and "actual" in text and "bound" in text
    assert f"reproducer: python {tmp_path}" in text


def test_a_float32_leak_is_inaccurate_not_wrong():
    r = check_grads(torch_fns.LogSumExpF32Leak.apply, (_x(3, 5, seed=1),), examples=0,
                    raise_on_failure=False, reproducer_dir=None)
    assert r.severity["class"] == "inaccurate" and r.severity["ratio"] > 100


# -- PyTorch's own ops: no false alarm on random inputs (and the search's edges) ----------


def _pos(x):
    return x.abs() + 0.5


OWN_OPS = {
    "exp": lambda x: torch.exp(x), "log": lambda x: torch.log(_pos(x)),
    "log1p": lambda x: torch.log1p(x.abs()), "expm1": lambda x: torch.expm1(x),
    "sqrt": lambda x: torch.sqrt(_pos(x)), "rsqrt": lambda x: torch.rsqrt(_pos(x)),
    "reciprocal": lambda x: torch.reciprocal(_pos(x)), "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "relu": F.relu, "abs": torch.abs,
    "silu": F.silu, "softplus": F.softplus, "elu": F.elu, "leaky_relu": F.leaky_relu,
    "hardtanh": F.hardtanh, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "pow3": lambda x: x ** 3, "pow2.5": lambda x: _pos(x) ** 2.5,
    "pow_tensor": lambda x: _pos(x) ** torch.tanh(x), "square": torch.square,
    "clamp": lambda x: x.clamp(-1.0, 1.0), "clamp_min": lambda x: x.clamp(min=0.3),
    "maximum": lambda x: torch.maximum(x, x.flip(-1)),
    "where": lambda x: torch.where(x > 0, x * 2, torch.exp(x)),
    "where_log_guard": lambda x: torch.where(x > 0, torch.log(torch.where(x > 0, x, 1.0)), x),
    "softmax": lambda x: F.softmax(x, dim=-1), "log_softmax": lambda x: F.log_softmax(x, 0),
    "logsumexp": lambda x: torch.logsumexp(x, dim=1),
    "layer_norm": lambda x: F.layer_norm(x, (4,), torch.ones(4, dtype=x.dtype) * 1.5,
                                         torch.full((4,), 0.25, dtype=x.dtype)),
    "rms_norm": lambda x: F.rms_norm(x, (4,)),
    "cross_entropy": lambda x: F.cross_entropy(x, torch.tensor([0, 3, 1])),
    "nll_loss": lambda x: F.nll_loss(F.log_softmax(x, 1), torch.tensor([2, 0, 1])),
    "mse_loss": lambda x: F.mse_loss(x, torch.ones_like(x)),
    "bce_logits": lambda x: F.binary_cross_entropy_with_logits(x, torch.full_like(x, 0.25)),
    "sum_mean": lambda x: x.sum(0) * x.mean(1, keepdim=True),
    "max_min": lambda x: x.max() + x.amax(1) + x.min(dim=0).values.sum(),
    "var_std": lambda x: x.var(1) + x.std(),
    "norm": lambda x: torch.linalg.vector_norm(x, dim=1),
    "cumsum": lambda x: x.cumsum(1),
    "matmul": lambda x: x @ x.T, "linear": lambda x: F.linear(x, x[:2], x[0, :2]),
    "einsum": lambda x: torch.einsum("ij,kj->ik", x, x.exp()),
    "bmm": lambda x: torch.bmm(x.reshape(1, 3, 4), x.T.reshape(1, 4, 3)),
    "views": lambda x: x.T.reshape(2, 6)[1:, ::2].unsqueeze(0).expand(2, 1, 3) * 2,
    "indexing": lambda x: x[torch.tensor([2, 0, 2]), 1:3] + x[x > 0].sum(),
    "gather": lambda x: x.gather(1, torch.tensor([[0], [3], [1]])),
    "cat_stack": lambda x: torch.cat([x, x.flip(0)]) * torch.stack([x, x]).sum(0).repeat(2, 1),
    "masked_fill": lambda x: x.masked_fill(x < 0, -1.0),
    "inplace": lambda x: x.clone().mul_(2.0).add_(x).clamp_(max=1.0),
    "setitem": lambda x: _setitem(x),
    "detach": lambda x: x * x.detach(),
    "pad_roll": lambda x: F.pad(x, (1, 2), value=0.5).roll(1, 1),
    "attention": lambda x: _attention(x),
    "sin": torch.sin, "cos": torch.cos, "erf": torch.erf, "gelu": F.gelu,
    "mv_dot": lambda x: torch.mv(x, x[0]) * torch.dot(x[1], x[2]),
    "baddbmm": lambda x: torch.baddbmm(x[:, :3].reshape(1, 3, 3), x.reshape(1, 3, 4),
                                       x.T.reshape(1, 4, 3), beta=0.5, alpha=2.0),
    "addmm": lambda x: torch.addmm(x[:, :3], x, x.T[:, :3], beta=0.25),
    "sort_topk": lambda x: x.sort(dim=1).values + x.topk(2, dim=1).values.sum(),
    "log_sigmoid": F.logsigmoid,
    "std_mean": lambda x: torch.std_mean(x, dim=1)[0] + torch.var_mean(x, dim=0)[1].sum(),
    "floor_div": lambda x: x * torch.div(x, 0.7, rounding_mode="floor"),
    "min_dim": lambda x: x.min(dim=1, keepdim=True).values * x,
    "logical": lambda x: torch.where((x > 0) & (x < 1), x, -x).cumsum(0),
}


def _setitem(x):
    z = torch.zeros(3, 4, dtype=x.dtype)
    z[1] = x[0] * 2
    z[:, 2] += x[:, 1]
    return z


def _attention(x):
    q, k, v = x, x.roll(1, 0), x.exp()
    scores = (q @ k.T) / 2.0
    causal = torch.ones(3, 3, dtype=torch.bool).triu(1)
    weights = F.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
    return weights @ v




@pytest.mark.parametrize("name", sorted(OWN_OPS))
def test_pytorchs_own_ops_pass(name):
    f = OWN_OPS[name]
    r = check_grads(f, (_x(3, 4, seed=hash(name) % 1000),), examples=4, reproducer_dir=None)
    assert r.passed


def test_prod_passes_at_random_inputs():
    assert check_grads(lambda x: x.prod(1), (_x(3, 4, seed=11),), examples=0).passed


def test_pytorchs_prod_backward_underflows_where_the_gradient_does_not():
    # the product underflows to 0, and PyTorch's backward (product / x) gives 0, while
    # d/dx3 = x0 * x1 * x2 = -2.92e-246 is a float64: found by the search, kept here
    x = torch.tensor([-0.39582, 1.1545e-245, 0.63994, 4.6268e-215], dtype=torch.float64)
    r = check_grads(lambda x: x.prod(), (x,), examples=0, raise_on_failure=False,
                    reproducer_dir=None)
    assert not r.passed
    assert r.worst.index == (3,) and r.worst.actual == 0.0
    assert r.worst.expected == pytest.approx(-0.39582 * 1.1545e-245 * 0.63994, rel=1e-12)


@pytest.mark.parametrize("name", ["softmax", "layer_norm", "cross_entropy", "matmul", "tanh",
                                  "attention"])
def test_pytorchs_own_ops_pass_in_float32(name):
    r = check_grads(OWN_OPS[name], (_x(3, 4, seed=7, dtype=torch.float32),), examples=4,
                    reproducer_dir=None)
    assert r.passed and r.dtype == "float32"


def test_gelu_is_judged_through_the_erf_row():
    # GELU's erf is a row of the op table: judged exactly, no fallback; PyTorch's own
    # expm1' (from its output) passes too, under the row's output form
    r = check_grads(F.gelu, (_x(3, 4),), examples=2, reproducer_dir=None)
    assert r.passed and not r.approximate
    assert check_grads(torch.expm1, (_x(3, 4),), examples=2, reproducer_dir=None).passed

    class Gelu(torch.autograd.Function):  # a derivative off by a relative 1e-9
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return F.gelu(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
            pdf = torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)
            return g * (cdf + x * pdf) * (1 + 1e-9)

    r = check_grads(Gelu.apply, (_x(3, 4),), examples=0, raise_on_failure=False,
                    reproducer_dir=None)
    assert not r.passed


def test_an_untraceable_op_is_named_and_the_fallback_is_approximate():
    with pytest.raises(Untraceable, match=r"aten\.lgamma\.default.*fallback=True"):
        check_grads(torch.lgamma, (_x(5, low=0.5, high=3.0),), examples=0)
    r = check_grads(torch.lgamma, (_x(5, low=0.5, high=3.0),), examples=0, fallback=True)
    assert r.passed and r.approximate
    assert "approximate" in r.message() and "finite differences" in r.message()


def test_the_fallback_still_catches_a_gross_bug():
    class Lgamma(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.lgamma(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.digamma(x) * 1.01

    r = check_grads(Lgamma.apply, (_x(4, low=0.5, high=3.0),), examples=0, fallback=True,
                    raise_on_failure=False, reproducer_dir=None)
    assert not r.passed and r.approximate


# -- what is differentiated, dtypes, errors, notes ---------------------------------------


def test_only_inputs_that_require_grad_are_differentiated():
    x, w = _x(3), _x(3, seed=1).requires_grad_()
    r = check_grads(lambda x, w: (x * w).sum(), (x, w), examples=0)
    assert r.passed and r.checked == 3 + 1


def test_a_branch_near_its_kink_is_noted():
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    r = check_grads(lambda x: F.relu((x + 1e16) - 1e16) + x, (x,), examples=0)
    assert r.passed and any("branch" in n for n in r.notes)


@pytest.mark.parametrize("bad, match", [
    ((lambda x: x * 2, (torch.ones(3, dtype=torch.float16),)), "float16"),
    ((lambda x: x * 2, (torch.ones(3, dtype=torch.int64),)), "no floating-point tensor"),
    ((lambda x: x.sum().item(), (torch.ones(3, dtype=torch.float64),)), "no floating-point"),
    ((lambda x: torch.log(x), (torch.tensor([-1.0], dtype=torch.float64),)), "domain"),
])
def test_bad_input_is_a_clear_error(bad, match):
    with pytest.raises(CheckError, match=match):
        check_grads(*bad, examples=0)


def test_the_search_leaves_inputs_untouched():
    x = _x(4)
    before = x.clone()
    check_grads(torch.tanh, (x,), examples=4)
    assert torch.equal(x, before) and x.grad is None


def test_a_float32_function_is_held_to_float32_bounds():
    x = _x(3, 4, seed=3, dtype=torch.float32)
    r = check_grads(lambda x: F.log_softmax(x, -1), (x,), examples=0)
    assert r.dtype == "float32" and r.passed
    # and float32 arithmetic where float64 was promised is not
    leak = check_grads(lambda x: F.log_softmax(x.float(), -1).double(), (_x(3, 4),),
                       examples=0, raise_on_failure=False, reproducer_dir=None)
    assert not leak.passed and any(m.what == "value" for m in leak.mismatches)


def test_exact_where_gradcheck_is_approximate():
    # gradcheck passes the float32 leak: its tolerance is rtol=1e-3
    f, x = torch_fns.LogSumExpF32Leak.apply, _x(3, 5, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(f, (x,))
    assert not check_grads(f, (x,), examples=0, raise_on_failure=False,
                           reproducer_dir=None).passed


# -- a property: random compositions of PyTorch ops, no false alarm ---------------------------

_UNARY = [torch.tanh, torch.sigmoid, F.softplus, F.silu, lambda t: t * t,
          lambda t: torch.exp(-t * t), lambda t: torch.log(t * t + 1.0),
          lambda t: F.softmax(t, dim=-1), lambda t: F.layer_norm(t, t.shape[-1:]),
          lambda t: t - t.mean(dim=0, keepdim=True), lambda t: t.clamp(-1.5, 1.5),
          lambda t: torch.where(t > 0, t, 0.1 * t)]
_BINARY = [torch.add, torch.mul, torch.sub, lambda a, b: a @ b.T @ a,
           lambda a, b: a / (b * b + 1.0), torch.maximum]


@given(st.lists(st.tuples(st.integers(0, len(_UNARY) - 1), st.integers(0, len(_BINARY) - 1),
                          st.booleans()), min_size=1, max_size=5),
       st.integers(0, 10**6))
@settings(max_examples=25, deadline=None)
def test_random_compositions_of_pytorchs_ops_pass(steps, seed):
    def f(x, y):
        for u, k, use_binary in steps:
            x = _UNARY[u](x)
            if use_binary:
                x = _BINARY[k](x, y)
        return x

    r = check_grads(f, (_x(3, 3, seed=seed), _x(3, 3, seed=seed + 1)), examples=0,
                    reproducer_dir=None)
    assert r.passed
