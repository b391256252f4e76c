"""The ``gradcert_grads`` pytest fixture: check_grads with pytest's failure report.

Registered by gradcert's pytest plugin (``-p gradcert.pytest_plugin``). The
fixture is a function with check_grads' signature; a failure fails the test
with check_grads' message alone (which input, which output, exact vs actual
vs bound, the reproducer), and the reproducer is written under
``--gradcert-out``/``GRADCERT_OUT`` (``reproducers/``), else
``gradcert-report/reproducers`` in pytest's root directory.

Session-scoped and stateless, so ``@given`` tests may use it: inside a
hypothesis test check_grads does not search, hypothesis does, and shrinks::

    @given(st.lists(st.floats(-50, 50), min_size=4, max_size=4))
    def test_softplus(gradcert_grads, xs):
        gradcert_grads(Softplus.apply, (torch.tensor(xs, dtype=torch.float64),))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["grads_for"]


def grads_for(root: Path, out: str | None) -> Callable[..., Any]:
    """check_grads as the fixture gives it (reproducers under ``out``, else ``root``)."""
    import pytest

    from gradcert.check.api import check_grads
    from gradcert.check.result import GradientMismatch

    directory = Path(out) / "reproducers" if out else root / "gradcert-report" / "reproducers"

    def gradcert_grads(f: Callable[..., Any], inputs: Any, **options: Any) -> Any:
        options.setdefault("reproducer_dir", directory)
        try:
            return check_grads(f, inputs, **options)
        except GradientMismatch as e:
            message = str(e)
        pytest.fail(message, pytrace=False)

    return gradcert_grads
