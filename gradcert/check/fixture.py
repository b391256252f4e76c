"""The ``gradcert_grads`` pytest fixture: check_grads with pytest's failure report.

Registered by gradcert's pytest plugin (``-p gradcert.pytest_plugin``). The
fixture is a function with check_grads' signature; a failure fails the test
with check_grads' message alone (which input, which output, exact vs actual
vs bound, the reproducer), and the reproducer is written under
``--gradcert-out``/``GRADCERT_OUT`` (``reproducers/``), else
``gradcert-report/reproducers`` in pytest's root directory. With an output
directory set, every check also appends a record (the shared results model)
to ``<out>/checks/<worker>.jsonl``; at the end of the session the plugin
turns them into ``checks.json``, ``checks.md`` (for a CI step summary),
``checks.html`` and ``checks.junit.xml``.

Session-scoped and stateless, so ``@given`` tests may use it: inside a
hypothesis test check_grads does not search, hypothesis does, and shrinks::

    @given(st.lists(st.floats(-50, 50), min_size=4, max_size=4))
    def test_softplus(gradcert_grads, xs):
        gradcert_grads(Softplus.apply, (torch.tensor(xs, dtype=torch.float64),))
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["grads_for", "record"]


def record(out: Path, rec: dict[str, Any]) -> None:
    """Append one check's record to this worker's JSON-lines file under ``out/checks``."""
    directory = out / "checks"
    directory.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(directory / f"{worker}.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, allow_nan=False) + "\n")


def _current_test() -> str | None:
    """The node id of the running test (pytest sets it in the environment)."""
    now = os.environ.get("PYTEST_CURRENT_TEST")
    return now.rsplit(" ", 1)[0] if now else None


def grads_for(root: Path, out: str | None) -> Callable[..., Any]:
    """check_grads as the fixture gives it (reproducers under ``out``, else ``root``)."""
    import pytest

    from gradcert.check.api import check_grads
    from gradcert.check.result import CheckError, GradientMismatch, check_id

    directory = Path(out) / "reproducers" if out else root / "gradcert-report" / "reproducers"

    def gradcert_grads(f: Callable[..., Any], inputs: Any, **options: Any) -> Any:
        options.setdefault("reproducer_dir", directory)
        t0 = time.perf_counter()
        try:
            result = check_grads(f, inputs, **options)
        except GradientMismatch as e:
            message = str(e)
            if out:
                record(Path(out), e.result.to_record(_current_test(),
                                                     time.perf_counter() - t0))
        except CheckError as e:
            if out:
                name = getattr(f, "__qualname__", None) or type(f).__name__
                record(Path(out), {"id": check_id(name), "level": "check",
                                   "item": _current_test(), "outcome": "error",
                                   "failure": {"message": f"{type(e).__name__}: {e}"}})
            raise
        else:
            if out:
                record(Path(out), result.to_record(_current_test(), time.perf_counter() - t0))
            return result
        pytest.fail(message, pytrace=False)

    return gradcert_grads
