"""Modules: seeded initialization, forward passes by hand, gradients, the tiny GPT."""

import math
import random

import pytest

from gradcert.engine import (
    GPT,
    MLP,
    Adam,
    Layer,
    Module,
    Neuron,
    Value,
    cross_entropy,
    rmsnorm,
    softmax,
)
from gradcert.engine.nn import linear


def test_module_base_has_no_parameters():
    assert Module().parameters() == []
    Module().zero_grad()


def test_neuron_is_relu_of_affine():
    n = Neuron(3, rng=random.Random(1))
    n.b.data = 0.25
    x = [1.0, -2.0, 0.5]
    pre = sum(w.data * xi for w, xi in zip(n.w, x, strict=True)) + 0.25
    out = n([Value(v) for v in x])
    assert out.data == pytest.approx(max(pre, 0.0), rel=1e-15)
    assert len(n.parameters()) == 4 and n.parameters()[-1] is n.b
    linear_n = Neuron(3, nonlin=False, rng=random.Random(1))
    assert linear_n(x).data == pytest.approx(pre - 0.25, rel=1e-15)


def test_neuron_rejects_wrong_input_length():
    with pytest.raises(ValueError):
        Neuron(2)([1.0, 2.0, 3.0])


def test_mlp_shapes_counts_and_gradient_by_hand():
    net = MLP(3, [4, 4, 2], seed=5)
    assert len(net.parameters()) == (3 + 1) * 4 + (4 + 1) * 4 + (4 + 1) * 2
    assert [len(layer.neurons) for layer in net.layers] == [4, 4, 2]
    assert [n.nonlin for layer in net.layers for n in layer.neurons][-2:] == [False, False]
    out = net([1.0, 2.0, 3.0])
    assert isinstance(out, list) and len(out) == 2
    one = MLP(1, [1], seed=0)
    w, b = one.parameters()
    y = one([2.0])
    y.backward()
    assert (y.data, w.grad, b.grad) == (w.data * 2.0, 2.0, 1.0)


def test_layer_default_rng_is_seeded():
    assert [p.data for p in Layer(2, 3).parameters()] == [p.data for p in Layer(2, 3).parameters()]


def test_seeded_and_global_rng_untouched():
    state = random.getstate()
    a = [p.data for p in MLP(2, [8, 1], seed=3).parameters()]
    b = [p.data for p in MLP(2, [8, 1], seed=3).parameters()]
    c = [p.data for p in MLP(2, [8, 1], seed=4).parameters()]
    g1 = [p.data for p in GPT(5, 4, n_embd=4, seed=3).parameters()]
    g2 = [p.data for p in GPT(5, 4, n_embd=4, seed=3).parameters()]
    assert a == b and a != c and g1 == g2
    assert random.getstate() == state


def test_module_zero_grad():
    net = MLP(2, [3, 1], seed=0)
    net([1.0, 1.0]).backward()
    assert any(p.grad for p in net.parameters())
    net.zero_grad()
    assert all(p.grad == 0.0 for p in net.parameters())


def test_mlp_learns_xor_with_adam():
    net = MLP(2, [8, 1], seed=0)
    data = [((0.0, 0.0), -1.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), -1.0)]
    opt = Adam(net.parameters(), lr=0.05)

    def loss():
        return sum(((net(list(x)) - y) ** 2 for x, y in data), Value(0.0))

    first = loss().data
    for _ in range(150):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().data < 0.05 < first


def test_softmax_sums_to_one_and_is_stable():
    p = softmax([Value(1000.0), Value(999.0), Value(-1000.0)])
    assert sum(v.data for v in p) == pytest.approx(1.0, rel=1e-15)
    assert p[0].data == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-15)
    assert p[2].data == 0.0


def test_softmax_gradient_is_p_times_one_minus_p():
    xs = [Value(0.5), Value(-1.0), Value(2.0)]
    p = softmax(xs)
    p[0].backward()
    assert xs[0].grad == pytest.approx(p[0].data * (1 - p[0].data), rel=1e-14)
    assert xs[1].grad == pytest.approx(-p[0].data * p[1].data, rel=1e-14)


def test_cross_entropy_is_minus_log_softmax_and_its_gradient():
    xs = [Value(0.3), Value(-2.0), Value(1.7)]
    loss = cross_entropy(xs, 2)
    z = sum(math.exp(v.data) for v in xs)
    assert loss.data == pytest.approx(-math.log(math.exp(1.7) / z), rel=1e-15)
    loss.backward()
    probs = [math.exp(v.data) / z for v in xs]
    assert [v.grad for v in xs] == pytest.approx([probs[0], probs[1], probs[2] - 1], rel=1e-14)
    big = cross_entropy([Value(800.0), Value(0.0)], 1)  # stable far past exp's range
    assert big.data == pytest.approx(800.0, rel=1e-15)


def test_rmsnorm_and_linear():
    out = rmsnorm([Value(1.0), Value(2.0), Value(2.0)])  # mean square 3
    assert [v.data for v in out] == pytest.approx([x / math.sqrt(3 + 1e-5) for x in (1, 2, 2)],
                                                  rel=1e-15)
    y = linear([Value(2.0), Value(-1.0)], [[Value(1.0), Value(3.0)], [Value(0.5), Value(0.0)]])
    assert [v.data for v in y] == [-1.0, 1.0]


def test_gpt_shapes_and_initial_loss():
    gpt = GPT(vocab_size=7, block_size=6, n_embd=8, n_head=2, n_layer=2, seed=1)
    n = 7 * 8 + 6 * 8 + 7 * 8 + 2 * (4 * 8 * 8 + 2 * 4 * 8 * 8)
    assert len(gpt.parameters()) == n
    logits = gpt([0, 3, 6])
    assert len(logits) == 3 and all(len(row) == 7 for row in logits)
    assert abs(gpt.loss([0, 3, 6, 2]).data - math.log(7)) < 0.2


def test_gpt_is_causal():
    gpt = GPT(vocab_size=5, block_size=4, n_embd=4, n_head=1, seed=2)
    a = [v.data for v in gpt([1, 2, 3])[1]]
    b = [v.data for v in gpt([1, 2, 0])[1]]
    c = [v.data for v in gpt([1, 4, 3])[1]]
    assert a == b and a != c


def test_gpt_gradient_matches_central_differences():
    gpt = GPT(vocab_size=4, block_size=4, n_embd=4, n_head=2, seed=3)
    tokens = [0, 2, 1, 3]
    params = gpt.parameters()
    gpt.loss(tokens).backward()
    for p in params[::9]:
        base, h = p.data, 1e-5
        p.data = base + h
        up = gpt.loss(tokens).data
        p.data = base - h
        down = gpt.loss(tokens).data
        p.data = base
        assert p.grad == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_gpt_learns_a_repeated_sequence():
    gpt = GPT(vocab_size=4, block_size=5, n_embd=8, n_head=2, seed=0)
    opt = Adam(gpt.parameters(), lr=0.05)
    tokens = [0, 1, 2, 3, 0]
    first = gpt.loss(tokens).data
    for _ in range(30):
        opt.zero_grad()
        gpt.loss(tokens).backward()
        opt.step()
    assert gpt.loss(tokens).data < 0.2 * first


def test_gpt_errors():
    with pytest.raises(ValueError, match="n_embd 6 is not a multiple of n_head 4"):
        GPT(3, 3, n_embd=6, n_head=4)
    gpt = GPT(3, 2, n_embd=2, n_head=1)
    with pytest.raises(ValueError, match="3 tokens, block_size is 2"):
        gpt([0, 1, 2])
    with pytest.raises(ValueError, match="0 tokens"):
        gpt([])
    with pytest.raises(ValueError, match="at least two tokens"):
        gpt.loss([1])
