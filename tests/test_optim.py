"""Adam: hand-computed steps, weight decay, PyTorch agreement, argument checks."""

import math

import pytest

from gradcert.engine import Adam, Value, adam_update


def expected_adam(p, grads_of, steps, lr, b1, b2, eps, wd=0.0):
    """Adam written out from the paper's bias-corrected formulas, on plain floats."""
    m = v = 0.0
    trail = []
    for t in range(1, steps + 1):
        g = grads_of(p) + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        step = lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        p = p - step
        trail.append(p)
    return trail


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_three_steps_match_hand_formulas(wd):
    # f(x, y) = x^2 y + 3 y: df/dx = 2 x y, df/dy = x^2 + 3
    x, y = Value(1.5), Value(-0.5)
    opt = Adam([x, y], lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=wd)
    got = []
    for _ in range(3):
        opt.zero_grad()
        (x * x * y + 3.0 * y).backward()
        opt.step()
        got.append((x.data, y.data))
    # The two parameters are coupled, so replay the expected trajectory jointly.
    px, py, mx, my, vx, vy = 1.5, -0.5, 0.0, 0.0, 0.0, 0.0
    for t in range(1, 4):
        gx, gy = 2 * px * py + wd * px, px * px + 3 + wd * py
        mx, my = 0.8 * mx + 0.2 * gx, 0.8 * my + 0.2 * gy
        vx, vy = 0.9 * vx + 0.1 * gx**2, 0.9 * vy + 0.1 * gy**2
        c1, c2 = 1 - 0.8**t, 1 - 0.9**t
        px -= 0.1 * (mx / c1) / (math.sqrt(vx / c2) + 1e-6)
        py -= 0.1 * (my / c1) / (math.sqrt(vy / c2) + 1e-6)
        assert got[t - 1] == pytest.approx((px, py), rel=1e-14)
    assert opt.t == 3


def test_first_step_moves_each_parameter_by_lr_against_its_gradient():
    ps = [Value(1.0), Value(-2.0), Value(0.5)]
    opt = Adam(ps, lr=0.01, eps=0.0)
    (ps[0] * 3.0 - ps[1] * ps[1] + ps[2] * 1e-6).backward()  # grads 3, 4, 1e-6
    opt.step()
    assert [p.data for p in ps] == pytest.approx([0.99, -2.01, 0.49], rel=1e-15)


def test_single_parameter_trajectory_with_and_without_weight_decay():
    for wd in (0.0, 0.5):
        p = Value(2.0)
        opt = Adam([p], lr=0.05, weight_decay=wd)
        trail = []
        for _ in range(3):
            opt.zero_grad()
            (p.exp() - p * 4.0).backward()
            opt.step()
            trail.append(p.data)
        want = expected_adam(2.0, lambda q: math.exp(q) - 4.0, 3, 0.05, 0.9, 0.999, 1e-8, wd)
        assert trail == pytest.approx(want, rel=1e-14)
    assert trail != pytest.approx(expected_adam(2.0, lambda q: math.exp(q) - 4.0, 3,
                                                0.05, 0.9, 0.999, 1e-8), rel=1e-6)


def test_adam_update_is_the_pure_step():
    p, m, v = adam_update(1.0, 2.0, 0.0, 0.0, 1, lr=0.1, weight_decay=1.0)  # g = 3
    assert m == pytest.approx(0.3) and v == pytest.approx(0.009)
    assert p == pytest.approx(1.0 - 0.1 * 3.0 / (3.0 + 1e-8), rel=1e-15)


def test_zero_grad_and_no_decay_without_gradient():
    p = Value(1.0)
    p.grad = 5.0
    opt = Adam([p], lr=0.1)
    opt.zero_grad()
    assert p.grad == 0.0
    opt.step()
    assert p.data == 1.0


def test_minimizes_a_quadratic():
    x = Value(3.0)
    opt = Adam([x], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        ((x - 1.0) ** 2).backward()
        opt.step()
    assert abs(x.data - 1.0) < 1e-3


def test_agrees_with_torch_adam():
    torch = pytest.importorskip("torch")
    for wd in (0.0, 0.01):
        w = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
        topt = torch.optim.Adam([w], lr=0.02, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)
        a, b = Value(0.7), Value(-1.3)
        opt = Adam([a, b], lr=0.02, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)
        for _ in range(5):
            topt.zero_grad()
            (w[0] * w[1] + w[0].exp()).backward()
            topt.step()
            opt.zero_grad()
            (a * b + a.exp()).backward()
            opt.step()
        assert [a.data, b.data] == pytest.approx(w.tolist(), rel=1e-13)


@pytest.mark.parametrize("kwargs, words", [
    ({"lr": -1.0}, "lr must be >= 0"),
    ({"lr": math.nan}, "lr must be >= 0"),
    ({"betas": (0.9, 1.0)}, "betas must be two numbers in [0, 1)"),
    ({"betas": (0.9,)}, "betas"),
    ({"eps": -1e-8}, "eps and weight_decay"),
    ({"weight_decay": -0.1}, "eps and weight_decay"),
])
def test_bad_hyperparameters(kwargs, words):
    with pytest.raises(ValueError) as info:
        Adam([Value(1.0)], **kwargs)
    assert words in str(info.value)


def test_parameters_must_be_values():
    with pytest.raises(TypeError, match="parameter 1 is a float, not a Value"):
        Adam([Value(1.0), 2.0])
