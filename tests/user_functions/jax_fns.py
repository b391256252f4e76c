"""JAX custom_vjp and custom_jvp rules: correct ones and their realistic bugs."""

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)


def _f64(*shape, seed=0, low=-2.0, high=2.0):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, shape))


def _vjp(primal, fwd, bwd):
    f = jax.custom_vjp(primal)
    f.defvjp(fwd, bwd)
    return f


# -- a float32 leak: log-sum-exp whose backward computes softmax in float32 ----------


def _lse(x):
    m = jax.lax.stop_gradient(x.max(axis=-1, keepdims=True))
    return m + jnp.log(jnp.exp(x - m).sum(axis=-1, keepdims=True))


def _lse_fwd(x):
    y = _lse(x)
    return y, (x, y)


logsumexp = _vjp(_lse, _lse_fwd, lambda res, g: (g * jnp.exp(res[0] - res[1]),))
logsumexp_f32_leak = _vjp(_lse, _lse_fwd, lambda res, g: (
    g * jax.nn.softmax(res[0].astype(jnp.float32), axis=-1).astype(jnp.float64),))


# -- a wrong branch above a threshold: softplus' = 0 above 20 -------------------------


def _softplus(x):
    return jnp.where(x > 20, x, jnp.log1p(jnp.exp(jnp.minimum(x, 20.0))))


softplus = _vjp(_softplus, lambda x: (_softplus(x), x),
                lambda x, g: (g * jnp.where(x > 20, 1.0, jax.nn.sigmoid(x)),))
softplus_threshold_bug = _vjp(_softplus, lambda x: (_softplus(x), x),
                              lambda x, g: (g * jnp.where(x > 20, 0.0, jax.nn.sigmoid(x)),))


# -- a missing term under broadcasting: the bias gradient of one row only ------------


def _add(x, b):
    return x + b


add_bias = _vjp(_add, lambda x, b: (x + b, None), lambda res, g: (g, g.sum(axis=0)))
add_bias_one_row = _vjp(_add, lambda x, b: (x + b, None), lambda res, g: (g, g[0]))


# -- a wrong reduction axis: softmax's backward sums over the batch -------------------


def _softmax_fwd(x):
    y = jax.nn.softmax(x, axis=-1)
    return y, y


softmax = _vjp(lambda x: jax.nn.softmax(x, axis=-1), _softmax_fwd,
               lambda y, g: (y * (g - (g * y).sum(axis=-1, keepdims=True)),))
softmax_wrong_axis = _vjp(lambda x: jax.nn.softmax(x, axis=-1), _softmax_fwd,
                          lambda y, g: (y * (g - (g * y).sum(axis=0, keepdims=True)),))


# -- an epsilon guard: log's backward divides by x + 1e-8 ------------------------------


def _log(x):
    return jnp.log(x)


log = _vjp(_log, lambda x: (jnp.log(x), x), lambda x, g: (g / x,))
log_eps_guard = _vjp(_log, lambda x: (jnp.log(x), x), lambda x, g: (g / (x + 1e-8),))


# -- a custom_jvp rule (judged through the vjp JAX derives from it) -------------------


@jax.custom_jvp
def safe_norm(x):
    return jnp.sqrt(jnp.sum(x * x))


@safe_norm.defjvp
def _safe_norm_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    n = safe_norm(x)
    return n, jnp.sum(x * t) / n


@jax.custom_jvp
def safe_norm_missing_half(x):
    return jnp.sqrt(jnp.sum(x * x))


@safe_norm_missing_half.defjvp
def _safe_norm_missing_half_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    n = safe_norm_missing_half(x)
    return n, jnp.sum(x * t) / (2 * n)  # d sqrt(s) = ds / (2 sqrt s), with ds = 2 x.t


CATALOGUE = [
    ("float32 leak", logsumexp, logsumexp_f32_leak, lambda: (_f64(3, 5, seed=1),), False),
    ("wrong branch above a threshold", softplus, softplus_threshold_bug,
     lambda: (_f64(6, seed=2),), True),
    ("missing term under broadcasting", add_bias, add_bias_one_row,
     lambda: (_f64(3, 4, seed=3), _f64(4, seed=4)), False),
    ("wrong reduction axis", softmax, softmax_wrong_axis, lambda: (_f64(3, 4, seed=5),), False),
    ("an epsilon guard", log, log_eps_guard, lambda: (_f64(5, seed=6, low=0.5, high=3.0),),
     False),
    ("a custom_jvp rule", safe_norm, safe_norm_missing_half, lambda: (_f64(4, seed=7),), False),
]
