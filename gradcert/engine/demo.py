"""Train the reference engine's models and print the loss falling.

``python -m gradcert.engine.demo [--steps N]`` (or ``gradcert demo``) trains
an MLP on two interleaved half-moons and a tiny GPT on the made-up names in
``data/names.txt``, both with Adam, and prints each loss at the start, along
the way, and at the end.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from importlib import resources

from gradcert.engine.nn import GPT, MLP
from gradcert.engine.optim import Adam
from gradcert.engine.value import Value

__all__ = ["main", "moons", "names"]


def moons(n: int = 60, noise: float = 0.1, seed: int = 0) -> list[tuple[float, float, int]]:
    """``n`` points ``(x, y, label)`` on two half-moons, label +1 or -1.

    >>> [round(v, 3) for v in moons(2, noise=0.0)[0]]
    [1.0, 0.0, 1]
    """
    rng = random.Random(seed)
    points = []
    for i in range(n):
        t = math.pi * (i // 2) / max(1, n // 2 - 1)
        if i % 2 == 0:
            x, y, label = math.cos(t), math.sin(t), 1
        else:
            x, y, label = 1.0 - math.cos(t), 0.5 - math.sin(t), -1
        points.append((x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise), label))
    return points


def names() -> list[str]:
    """The shipped character data set: a few hundred short made-up names.

    >>> len(names()) > 100 and all(n.isalpha() for n in names())
    True
    """
    text = resources.files("gradcert.engine").joinpath("data/names.txt").read_text("utf-8")
    return text.split()


def train_mlp(steps: int, seed: int = 0) -> list[float]:
    """Hinge loss of an MLP on the moons, before each step and after the last."""
    data = moons(seed=seed)
    model = MLP(2, [12, 12, 1], seed=seed)
    opt = Adam(model.parameters(), lr=0.03)

    def score(x: float, y: float) -> Value:
        out = model([x, y])
        assert isinstance(out, Value)
        return out

    def loss() -> Value:
        margins = [(1.0 - label * score(x, y)).relu() for x, y, label in data]
        return sum(margins[1:], margins[0]) / len(margins)

    losses = []
    for _ in range(steps):
        opt.zero_grad()
        total = loss()
        losses.append(total.data)
        total.backward()
        opt.step()
    losses.append(loss().data)
    return losses


def train_gpt(steps: int, seed: int = 0, n_embd: int = 12, held_out: int = 20) -> list[float]:
    """Mean loss of a tiny GPT on held-out names at the start and end, and each step's."""
    words = names()
    chars = sorted(set("".join(words)))
    bos = len(chars)
    encode = {c: i for i, c in enumerate(chars)}
    docs = [[bos, *(encode[c] for c in w), bos] for w in words]
    test, train = docs[:held_out], docs[held_out:]
    model = GPT(bos + 1, max(map(len, docs)) - 1, n_embd=n_embd, n_head=2, seed=seed)
    opt = Adam(model.parameters(), lr=0.01, betas=(0.85, 0.99))
    rng = random.Random(seed)

    def held_out_loss() -> float:
        return sum(model.loss(d).data for d in test) / len(test)

    losses = [held_out_loss()]
    for _ in range(steps):
        opt.zero_grad()
        total = model.loss(rng.choice(train))
        losses.append(total.data)
        total.backward()
        opt.step()
    losses.append(held_out_loss())
    return losses


def _report(name: str, losses: list[float], steps: int, seconds: float) -> None:
    every = max(1, steps // 5)
    print(f"{name}: loss {losses[0]:.4f} at the start")
    for lo in range(1, steps + 1, every):
        window = losses[lo: min(lo + every, steps + 1)]
        print(f"  steps {lo:>4}-{lo + len(window) - 1:<4} mean training loss "
              f"{sum(window) / len(window):.4f}")
    print(f"{name}: loss {losses[-1]:.4f} at the end ({seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 (the exit status)."""
    p = argparse.ArgumentParser(prog="python -m gradcert.engine.demo", description=__doc__)
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per model (default: 100 for the MLP, 200 for the GPT)")
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error("--steps must be at least 1")
    start = time.perf_counter()
    steps = args.steps or 100
    print(f"MLP 2-12-12-1 on {len(moons())} moon points, mean hinge loss, Adam, {steps} steps")
    _report("MLP", train_mlp(steps), steps, time.perf_counter() - start)

    vocab = len(set("".join(names()))) + 1
    steps, mid = args.steps or 200, time.perf_counter()
    print(f"tiny GPT (1 layer, 2 heads, width 12) on {len(names())} names, one name per step, "
          f"Adam, {steps} steps; "
          f"held-out cross-entropy at start and end (chance: ln {vocab} = {math.log(vocab):.2f})")
    _report("GPT", train_gpt(steps), steps, time.perf_counter() - mid)
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
