"""The drop-ins (gradcert.torch.gradcheck, gradcert.jax.check_grads) and the pytest fixture
gradcert_grads, including the documented pattern for @given tests."""

import subprocess
import sys
import textwrap

import pytest

from gradcert.check import NotYetSupported


def test_the_drop_in_modules_import_no_framework():
    code = ("import sys, gradcert.torch, gradcert.jax; "
            "print(sorted(m for m in ('torch', 'jax', 'mpmath') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- gradcert.torch.gradcheck ---------------------------------------------------------


def test_torch_gradcheck_returns_true_or_raises_torchs_error():
    torch = pytest.importorskip("torch")
    from torch.autograd.gradcheck import GradcheckError
    from user_functions import torch_fns

    from gradcert.torch import gradcheck

    x = torch.linspace(-2, 2, 15, dtype=torch.float64).reshape(3, 5).requires_grad_()
    assert gradcheck(torch_fns.LogSumExp.apply, (x,), examples=4) is True
    assert torch.autograd.gradcheck(torch_fns.LogSumExpF32Leak.apply, (x,))  # torch's passes
    with pytest.raises(GradcheckError) as e:
        gradcheck(torch_fns.LogSumExpF32Leak.apply, (x,), examples=0, reproducer_dir=None)
    assert isinstance(e.value, AssertionError) and "d output [" in str(e.value)
    assert gradcheck(torch_fns.LogSumExpF32Leak.apply, (x,), examples=0,
                     raise_exception=False, reproducer_dir=None) is False


def test_torch_gradcheck_says_what_it_ignores():
    torch = pytest.importorskip("torch")
    from gradcert.torch import gradcheck

    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    with pytest.warns(UserWarning, match="ignores atol, eps"):
        assert gradcheck(torch.exp, (x,), eps=1e-3, atol=1e-2, examples=0)
    with pytest.raises(ValueError, match="require gradient"):
        gradcheck(torch.exp, (x.detach(),))


# -- gradcert.jax.check_grads -----------------------------------------------------------


def test_jax_check_grads_returns_none_or_raises_an_assertion_error():
    pytest.importorskip("jax")
    import jax.numpy as jnp
    from user_functions import jax_fns

    from gradcert.jax import check_grads

    x = jnp.linspace(-2.0, 2.0, 12).reshape(3, 4)
    assert check_grads(jax_fns.softmax, (x,), order=1, examples=4) is None
    with pytest.raises(AssertionError, match=r"/ d input 0 \["):
        check_grads(jax_fns.softmax_wrong_axis, (x,), order=1, examples=0,
                    reproducer_dir=None)
    with pytest.raises(NotYetSupported, match="order=2"):
        check_grads(jax_fns.softmax, (x,), order=2)
    with pytest.warns(UserWarning, match="ignores atol"):
        check_grads(jnp.tanh, (x,), 1, atol=1e-2, examples=0)


# -- the fixture ----------------------------------------------------------------------------


def _pytest(tmp_path, body, *args):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "gradcert.pytest_plugin",
                           "-p", "no:cacheprovider", "-q", *args, "test_user.py"],
                          cwd=tmp_path, capture_output=True, text=True)


_FUNCTIONS = """
    import pytest
    from hypothesis import given, settings, strategies as st

    from gradcert.engine import Value


    class LeakyRelu(Value):  # relu' is 0.01 below 0 while relu is 0 there
        def relu(self):
            out = Value(max(self.data, 0.0))
            out._a, out._da = self, (1.0 if self.data > 0 else 0.01)
            return out


    def relu_sum(x, y):
        return x.relu() + y.relu()

"""


def test_the_fixture_fails_a_test_with_the_message_and_a_reproducer(tmp_path):
    pytest.importorskip("hypothesis")
    run = _pytest(tmp_path, _FUNCTIONS + """
    def test_correct(gradcert_grads):
        assert gradcert_grads(lambda x: x.tanh() * x, [0.5])

    def test_leaky(gradcert_grads):
        gradcert_grads(relu_sum, [LeakyRelu(1.0), LeakyRelu(2.0)])
    """)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert "d output / d input" in run.stdout and "reproducer: python" in run.stdout
    assert "Traceback" not in run.stdout  # the message alone
    written = list((tmp_path / "gradcert-report" / "reproducers").glob("*.py"))
    assert len(written) == 1
    rerun = subprocess.run([sys.executable, str(written[0])], capture_output=True, text=True)
    assert rerun.returncode == 1, rerun.stderr


def test_the_documented_given_pattern_finds_and_shrinks(tmp_path):
    run = _pytest(tmp_path, _FUNCTIONS + """
    @settings(derandomize=True, database=None)
    @given(st.floats(-10, 10), st.floats(-10, 10))
    def test_leaky_given(gradcert_grads, a, b):
        gradcert_grads(relu_sum, [LeakyRelu(a), LeakyRelu(b)])
    """, "--gradcert-out", "out")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and "During handling" not in run.stdout
    # hypothesis shrank it: one input kept positive, the other the simplest negative
    assert "at the inputs: [Value(data=1.0, grad=0.0), Value(data=-1.0, grad=0.0)]" in \
        run.stdout or "at the inputs: [Value(data=-1.0" in run.stdout
    assert list((tmp_path / "out" / "reproducers").glob("*.py"))
