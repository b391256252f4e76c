"""check_grads on JAX: the catalogue of custom_vjp / custom_jvp rules (each bug found, each
correct version passing), JAX's own ops with no false alarm, and what cannot be traced."""

import subprocess
import sys

import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
np = pytest.importorskip("numpy")

from user_functions import jax_fns  # noqa: E402

from gradcert.check import CheckError, Untraceable, check_grads  # noqa: E402

pytestmark = pytest.mark.slow  # JAX compiles every traced function

jax.config.update("jax_enable_x64", True)


def _x(*shape, seed=0, low=-2.0, high=2.0, dtype=np.float64):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, shape).astype(dtype))


@pytest.mark.parametrize("name, correct, buggy, inputs, search", jax_fns.CATALOGUE,
                         ids=[c[0] for c in jax_fns.CATALOGUE])
def test_each_correct_rule_passes(name, correct, buggy, inputs, search):
    assert check_grads(correct, inputs(), examples=8).passed


@pytest.mark.parametrize("name, correct, buggy, inputs, search", jax_fns.CATALOGUE,
                         ids=[c[0] for c in jax_fns.CATALOGUE])
def test_each_bug_is_found(name, correct, buggy, inputs, search, tmp_path):
    at_given = check_grads(buggy, inputs(), examples=0, raise_on_failure=False,
                           reproducer_dir=None)
    assert at_given.passed == search
    r = check_grads(buggy, inputs(), examples=16, raise_on_failure=False,
                    reproducer_dir=tmp_path)
    assert not r.passed and r.worst.what == "gradient" and r.worst.error > r.worst.bound
    assert r.reproducer is not None


def test_the_threshold_bug_is_shrunk_and_reproduced(tmp_path):
    given = _x(6, seed=2)
    r = check_grads(jax_fns.softplus_threshold_bug, (given,), examples=16,
                    raise_on_failure=False, reproducer_dir=tmp_path)
    changed = np.nonzero(np.asarray(r.inputs[0]) != np.asarray(given))[0].tolist()
    assert len(changed) == 1 and float(r.inputs[0][changed[0]]) > 20
    assert (r.worst.expected, r.worst.actual) == (1.0, 0.0)
    run = subprocess.run([sys.executable, str(r.reproducer)], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "from user_functions.jax_fns import softplus_threshold_bug" in \
        r.reproducer.read_text()


def _pos(x):
    return jnp.abs(x) + 0.5


OWN_OPS = {
    "exp": jnp.exp, "log": lambda x: jnp.log(_pos(x)), "log1p": lambda x: jnp.log1p(jnp.abs(x)),
    "sqrt": lambda x: jnp.sqrt(_pos(x)), "rsqrt": lambda x: jax.lax.rsqrt(_pos(x)),
    "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "abs": jnp.abs,
    "silu": jax.nn.silu, "softplus": jax.nn.softplus, "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu, "gelu_tanh": jax.nn.gelu,
    "pow3": lambda x: x ** 3, "pow2.5": lambda x: _pos(x) ** 2.5,
    "pow_tensor": lambda x: _pos(x) ** jnp.tanh(x), "square": jnp.square,
    "clip": lambda x: jnp.clip(x, -1.0, 1.0), "maximum": lambda x: jnp.maximum(x, x[::-1]),
    "where": lambda x: jnp.where(x > 0, x * 2, jnp.exp(x)),
    "where_log_guard": lambda x: jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1.0)), x),
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
    "log_softmax": lambda x: jax.nn.log_softmax(x, axis=0),
    "logsumexp": lambda x: jax.nn.logsumexp(x, axis=1),
    "layer_norm": lambda x: (x - x.mean(-1, keepdims=True))
    / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5) * 1.5 + 0.25,
    "cross_entropy": lambda x: -jnp.take_along_axis(
        jax.nn.log_softmax(x), jnp.array([[0], [3], [1]]), axis=1).mean(),
    "sum_mean": lambda x: x.sum(0) * x.mean(1, keepdims=True),
    "max_min": lambda x: x.max() + x.max(1) + x.min(0).sum(),
    "var_std": lambda x: x.var(1) + x.std(),
    "norm": lambda x: jnp.linalg.norm(x, axis=1), "prod": lambda x: jnp.prod(x, axis=1),
    "cumsum": lambda x: jnp.cumsum(x, axis=1),
    "matmul": lambda x: x @ x.T, "einsum": lambda x: jnp.einsum("ij,kj->ik", x, jnp.exp(x)),
    "views": lambda x: x.T.reshape(2, 6)[1:, ::2][None] * 2,
    "indexing": lambda x: x[jnp.array([2, 0, 2]), 1:3] + jnp.sum(jnp.where(x > 0, x, 0)),
    "concat": lambda x: jnp.concatenate([x, x[::-1]]) * jnp.tile(x, (2, 1)),
    "at_set": lambda x: x.at[1].set(x[0] * 2),
    "stop_gradient": lambda x: x * jax.lax.stop_gradient(x),
    "pad": lambda x: jnp.pad(x, ((0, 0), (1, 2)), constant_values=0.5),
    "scan": lambda x: jax.lax.fori_loop(0, 3, lambda i, c: jnp.tanh(c * x), x),
    "cond": lambda x: jax.lax.cond(x[0, 0] > 0, lambda y: y * 2, lambda y: y ** 3, x),
    "attention": lambda x: _attention(x),
    "clamp": lambda x: jax.lax.clamp(-1.0, x, 1.0),
    "scan_ys": lambda x: jax.lax.scan(lambda c, xi: (c + xi, c * xi), jnp.zeros(4), x)[1],
    "reverse_cumsum": lambda x: jax.lax.cumsum(x, axis=1, reverse=True),
    "prod_all": lambda x: jnp.prod(x[:2, :2]),
    "sin": jnp.sin, "cos": jnp.cos, "erf": jax.scipy.special.erf, "tan": jnp.tan,
    "gelu_exact": lambda x: jax.nn.gelu(x, approximate=False),
}



def _attention(x):
    scores = x @ jnp.roll(x, 1, axis=0).T / 2.0
    causal = jnp.triu(jnp.ones((3, 3), dtype=bool), 1)
    w = jax.nn.softmax(jnp.where(causal, -jnp.inf, scores), axis=-1)
    return w @ jnp.exp(x)


@pytest.mark.parametrize("name", sorted(OWN_OPS))
def test_jaxs_own_ops_pass(name):
    r = check_grads(OWN_OPS[name], (_x(3, 4, seed=sum(map(ord, name))),), examples=4,
                    reproducer_dir=None)
    assert r.passed


@pytest.mark.parametrize("name", ["softmax", "layer_norm", "matmul", "tanh", "attention"])
def test_jaxs_own_ops_pass_in_float32(name):
    r = check_grads(OWN_OPS[name], (_x(3, 4, seed=7, dtype=np.float32),), examples=4,
                    reproducer_dir=None)
    assert r.passed and r.dtype == "float32"


def test_exact_gelu_is_judged_through_the_erf_row():
    # GELU's erf is a row of the op table: judged exactly, no fallback, and a planted
    # error in its derivative is caught
    f = lambda x: jax.nn.gelu(x, approximate=False)  # noqa: E731
    r = check_grads(f, (_x(3, 4),), examples=2, reproducer_dir=None)
    assert r.passed and not r.approximate

    @jax.custom_vjp
    def gelu(x):
        return f(x)

    def fwd(x):
        return f(x), x

    def bwd(x, g):
        return (g * jax.grad(lambda t: f(t).sum())(x) * (1 + 1e-9),)

    gelu.defvjp(fwd, bwd)
    r = check_grads(gelu, (_x(3, 4),), examples=0, raise_on_failure=False,
                    reproducer_dir=None)
    assert not r.passed


def test_an_untraceable_primitive_is_named_and_the_fallback_is_approximate():
    f = jax.scipy.special.gammaln
    with pytest.raises(Untraceable, match="lgamma"):
        check_grads(f, (_x(5, low=0.5, high=3.0),), examples=0)
    r = check_grads(f, (_x(5, low=0.5, high=3.0),), examples=0, fallback=True)
    assert r.passed and r.approximate


def test_a_python_branch_on_a_traced_value_is_explained():
    def f(x):
        return x * 2 if x.sum() > 0 else x

    with pytest.raises(Untraceable, match="jnp.where or lax.cond"):
        check_grads(f, (_x(3),), examples=0)


def test_static_arguments_are_held_fixed():
    r = check_grads(lambda x, n, scale: jnp.sum(x ** n) * scale, (_x(3), 3, 0.5), examples=0)
    assert r.passed and r.checked == 3 + 1


def test_bad_input_is_a_clear_error():
    with pytest.raises(CheckError, match="no floating-point array"):
        check_grads(lambda n: n * 2, (jnp.arange(3),), examples=0)
    with pytest.raises(CheckError, match="float16"):
        check_grads(lambda x: x * 2, (jnp.ones(3, dtype=jnp.float16),), examples=0)


def test_numpy_arrays_are_taken_for_jax():
    r = check_grads(lambda x: jnp.tanh(x) * x, (np.array([0.5, -1.0]),), examples=0)
    assert r.passed and r.framework.startswith("jax")


def test_exact_where_jax_check_grads_is_approximate():
    from jax.test_util import check_grads as jax_check_grads

    x = jax_fns._f64(3, 5, seed=1)
    jax_check_grads(jax_fns.logsumexp_f32_leak, (x,), order=1, modes=["rev"])  # passes
    assert not check_grads(jax_fns.logsumexp_f32_leak, (x,), examples=0,
                           raise_on_failure=False, reproducer_dir=None).passed


def test_a_backward_jax_cannot_make_is_a_clear_error():
    def f(x):
        return jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, jnp.tanh(c[1] * x)),
                                  (0, x))[1]

    with pytest.raises(CheckError, match="jax.vjp.*while_loop"):
        check_grads(f, (_x(3),), examples=0)
