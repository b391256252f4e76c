"""check_grads against torch.autograd.gradcheck (slow and fast mode), on the same functions.

Three workloads, each a scalar loss of its parameters (every parameter an
input that requires grad), at growing sizes:

- ``mlp``: ``cross_entropy(tanh(x @ w1 + b1) @ w2, t)``, batch 4, written
  with torch functions;
- ``mlp-module``: the same network as ``nn.Sequential(Linear, Tanh, Linear)``
  called through ``torch.func.functional_call``, which is how a model's
  parameters are handed to gradcheck;
- ``attention``: one causal single-head attention block with a residual,
  ``mean((softmax(q k^T / sqrt(d) + mask) v Wo + x)^2)``, 4 tokens, parameters
  Wq, Wk, Wv, Wo (d x d each).

For each size it prints the number of parameters (inputs), the nodes of the
graph gradcert traces, the time of ``check_grads(f, params, examples=0)``
(the exact check at the given point: trace, oracle, tolerance model, the
function's own backward) with its parts (the tolerance model as the check
runs it for results inside its first-order bound, and the whole model with
its Monte Carlo runs, which a result outside that bound costs), and of
``gradcheck`` in slow mode (2 forwards per input) and fast mode (one random
direction). Each is the least CPU time of ``--repeats`` rounds, and each
round runs all of a row's measurements in turn, so they meet the same load
(the machine may be shared; PyTorch on one thread, as gradcert's check is).
Then how both exact and slow checks grow with the parameters (the exponent of
a power law through the smallest and largest size) and, once, the cost of
the default input search (16 more inputs). Run::

    python bench/bench_check.py                  # about 4 minutes on 2 cores
    python bench/bench_check.py --quick          # the smallest sizes only
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from gradcert.check import check_grads
from gradcert.check.torch_trace import trace
from gradcert.oracle import exact_graph, tolerance
from gradcert.oracle.tolerance import verdict

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # gradcert's check is one thread; so is gradcheck here


def _mlp(inputs: int, hidden: int, classes: int = 4, batch: int = 4
         ) -> tuple[Callable[..., Any], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, inputs, generator=g)
    t = torch.arange(batch) % classes
    params = [torch.randn(inputs, hidden, generator=g) / inputs**0.5,
              torch.randn(hidden, generator=g) * 0.1,
              torch.randn(hidden, classes, generator=g) / hidden**0.5]

    def loss(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(torch.tanh(x @ w1 + b1) @ w2, t)

    return loss, params


def _mlp_module(inputs: int, hidden: int, classes: int = 4, batch: int = 4
                ) -> tuple[Callable[..., Any], list[torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, classes))
    x = torch.randn(batch, inputs)
    t = torch.arange(batch) % classes
    names = [n for n, _ in model.named_parameters()]

    def loss(*params: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, dict(zip(names, params, strict=True)),
                                               (x,)), t)

    return loss, [p.detach().clone() for p in model.parameters()]


def _attention(d: int, tokens: int = 4) -> tuple[Callable[..., Any], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, d, generator=g)
    mask = torch.ones(tokens, tokens, dtype=torch.bool).triu(1)
    params = [torch.randn(d, d, generator=g) / d**0.5 for _ in range(4)]

    def loss(wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor,
             wo: torch.Tensor) -> torch.Tensor:
        q, k, v = x @ wq, x @ wk, x @ wv
        scores = (q @ k.T / math.sqrt(d)).masked_fill(mask, float("-inf"))
        return ((F.softmax(scores, dim=-1) @ v @ wo + x) ** 2).mean()

    return loss, params


WORKLOADS: dict[str, tuple[Callable[..., Any], list[tuple[int, ...]]]] = {
    "mlp": (_mlp, [(4, 4), (8, 10), (16, 16), (32, 28), (48, 52)]),
    "mlp-module": (_mlp_module, [(4, 4), (8, 10), (16, 16), (32, 28)]),
    "attention": (_attention, [(2,), (4,), (8,), (16,)]),
}


def _cpu(fn: Callable[[], Any]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _parts(f: Callable[..., Any], params: list[torch.Tensor]) -> tuple[int, list[float]]:
    """Nodes, and the CPU time of the trace, the oracle, the tolerance model as the
    check runs it for results inside the first-order bound (the exact ones stand
    for a correct function's) and the whole model (first-order bound and Monte
    Carlo runs: what a result outside that bound costs)."""
    t0 = time.process_time()
    traced = trace(f, params)
    t1 = time.process_time()
    (out,) = traced.outputs
    graph, _ = traced.builder.graph([(out.refs[0], 1.0)])
    t2 = time.process_time()
    ex = exact_graph(graph)
    t3 = time.process_time()
    tol, bad = verdict(graph, ex, ex.value_f64, ex.grad_f64)
    t4 = time.process_time()
    assert not bad and not tol.runs, "the exact results need no Monte Carlo runs"
    tolerance(graph, ex)
    t5 = time.process_time()
    return len(graph), [t1 - t0, t3 - t2, t4 - t3, t5 - t4]


def _measure(f: Callable[..., Any], params: list[torch.Tensor], repeats: int
             ) -> tuple[int, float, list[float], float, float]:
    """The least CPU time of each, over ``repeats`` rounds that run them in turn (the
    machine is shared: whatever load a round meets, it meets for all of them)."""
    exact = slow = fast = math.inf
    parts = [math.inf] * 4
    nodes = 0
    for _ in range(repeats):
        exact = min(exact, _cpu(lambda: check_grads(f, params, examples=0)))
        slow = min(slow, _cpu(lambda: torch.autograd.gradcheck(f, params)))
        fast = min(fast, _cpu(lambda: torch.autograd.gradcheck(f, params, fast_mode=True)))
        nodes, got = _parts(f, params)
        parts = [min(a, b) for a, b in zip(parts, got, strict=True)]
    return nodes, exact, parts, slow, fast


def run(names: list[str], quick: bool, repeats: int) -> None:
    print(f"torch {torch.__version__}, 1 thread; least CPU time of {repeats} rounds, each "
          f"running all of a row's measurements in turn, in ms; 'slow/exact' > 1 means "
          f"gradcert's exact check is faster than gradcheck's slow mode")
    header = (f"{'workload':<11} {'params':>7} {'nodes':>7} {'exact':>8} {'trace':>6} "
              f"{'oracle':>7} {'toler.':>7} {'model':>7} {'slow':>8} {'fast':>6} "
              f"{'slow/exact':>10}")
    for name in names:
        build, sizes = WORKLOADS[name]
        print()
        print(header)
        grown: list[tuple[int, float, float]] = []
        for size in sizes[:2] if quick else sizes:
            f, params = build(*size)
            params = [p.requires_grad_() for p in params]
            n = sum(p.numel() for p in params)
            check_grads(f, params, examples=0)  # warm: imports, first calls, caches
            torch.autograd.gradcheck(f, params, fast_mode=True)
            nodes, exact, (t_trace, t_oracle, t_tol, t_model), slow, fast = \
                _measure(f, params, repeats)
            grown.append((n, exact, slow))
            print(f"{name:<11} {n:>7} {nodes:>7} {exact * 1e3:>8.1f} {t_trace * 1e3:>6.1f} "
                  f"{t_oracle * 1e3:>7.1f} {t_tol * 1e3:>7.1f} {t_model * 1e3:>7.1f} "
                  f"{slow * 1e3:>8.1f} {fast * 1e3:>6.1f} {slow / exact:>10.2f}")
        (n0, e0, s0), (n1, e1, s1) = grown[0], grown[-1]
        if n1 > n0:
            grow = math.log(n1 / n0)
            print(f"{name}: gradcert's exact check grows as params^{math.log(e1 / e0) / grow:.2f}"
                  f" ({e1 / n1 * 1e6:.0f} us per parameter at {n1}), gradcheck's slow mode "
                  f"as params^{math.log(s1 / s0) / grow:.2f} ({s1 / n1 * 1e6:.0f} us)")
    f, params = _mlp(8, 10)
    params = [p.requires_grad_() for p in params]
    n = sum(p.numel() for p in params)
    searched = _cpu(lambda: check_grads(f, params))
    alone = min(_cpu(lambda: check_grads(f, params, examples=0)) for _ in range(repeats))
    print(f"\nthe default input search (16 more inputs, mlp, {n} params): {searched * 1e3:.0f} ms, "
          f"{searched / alone:.1f}x the check at the given point")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--quick", action="store_true", help="the two smallest sizes only")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    run(args.workloads, args.quick, args.repeats)


if __name__ == "__main__":
    main()
