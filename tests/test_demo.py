"""The demo: shipped data, falling losses, the command line."""

import math
import subprocess
import sys

import pytest

from gradcert.engine import demo


def test_moons_are_seeded_and_balanced():
    points = demo.moons(40, seed=1)
    assert points == demo.moons(40, seed=1) != demo.moons(40, seed=2)
    assert sum(label for _, _, label in points) == 0
    clean = demo.moons(10, noise=0.0)
    for x, y, label in clean:  # on the unit circle, or its shifted mirror
        r = math.hypot(x, y) if label == 1 else math.hypot(1 - x, 0.5 - y)
        assert r == pytest.approx(1.0)


def test_names_are_shipped():
    words = demo.names()
    assert 200 <= len(words) == len(set(words))
    assert all(w.isalpha() and w.islower() and len(w) <= 10 for w in words)


def test_mlp_loss_falls():
    losses = demo.train_mlp(10)
    assert len(losses) == 11 and losses[-1] < 0.7 * losses[0]


@pytest.mark.slow
def test_gpt_held_out_loss_falls():
    losses = demo.train_gpt(40, n_embd=8, held_out=10)
    assert len(losses) == 42
    assert losses[0] == pytest.approx(math.log(22), abs=0.15)  # chance at initialization
    assert losses[-1] < losses[0] - 0.2


def test_main_prints_the_losses(capsys, monkeypatch):
    mlp = [1.0] + [0.5] * 9 + [0.25, 0.125]  # before step 1, after steps 1..10, then the end
    monkeypatch.setattr(demo, "train_mlp", lambda steps: mlp[: steps + 1] + mlp[-1:])
    monkeypatch.setattr(demo, "train_gpt", lambda steps: [3.0] + [2.5] * steps + [2.25])
    assert demo.main(["--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert "MLP: loss 1.0000 at the start" in out and "MLP: loss 0.1250 at the end" in out
    assert "GPT: loss 3.0000 at the start" in out and "GPT: loss 2.2500 at the end" in out
    assert "steps    9-10   mean training loss 0.3750" in out
    assert "total" in out


def test_main_rejects_bad_steps(capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--steps", "0"])
    assert info.value.code == 2 and "--steps must be at least 1" in capsys.readouterr().err


def test_module_entry_point():
    cmd = [sys.executable, "-m", "gradcert.engine.demo", "--steps", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GPT: loss" in done.stdout


@pytest.mark.parametrize("argv, passed", [
    (["demo"], []), (["demo", "--steps", "7"], ["--steps", "7"])])
def test_cli_demo_passes_steps(monkeypatch, argv, passed):
    from gradcert import cli

    seen = []
    monkeypatch.setattr(demo, "main", lambda args: seen.append(args) or 0)
    assert cli.main(argv) == 0 and seen == [passed]
